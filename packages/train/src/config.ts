import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BackboneOptionsError, getBackbone } from '@dropclass/core';
import { SYNTHETIC_DEFAULT_COUNTS } from '@dropclass/datasets';
import { IMAGENET_MEAN, IMAGENET_STD } from '@dropclass/datasets';
import { z } from 'zod';
import { importBackbonePackage } from './backbones.js';
import { applyOverrides, readConfigFile } from './config-file.js';

const positiveInt = z.number().int().positive();

const pair = z.tuple([positiveInt, positiveInt]);

/**
 * The backbone: `kind` is a registered adapter's name (`unet` and `deeplabv3` are built in);
 * `package` is the npm package that registers it, imported on demand; `options` are checked, and
 * completed with defaults, by the adapter itself.
 */
const backbone = z
  .object({
    kind: z.string().min(1),
    package: z.string().min(1).optional(),
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

/** How evaluation predicts whole images: sliding window and test-time augmentation (see `InferenceOptions`). */
const inference = z
  .object({
    window: pair.optional(),
    stride: pair.optional(),
    flip: z.boolean().default(false),
    scales: z.array(z.number().positive()).min(1).default([1]),
  })
  .strict()
  .refine((i) => !i.stride || i.window, { message: 'stride needs a window: give window [height, width] as well', path: ['stride'] })
  .refine((i) => !i.stride || !i.window || (i.stride[0] <= i.window[0] && i.stride[1] <= i.window[1]), {
    message: 'stride must be at most the window on both sides, or pixels are left unpredicted',
    path: ['stride'],
  });

const synthetic = z
  .object({
    /** `pretrain`: the balanced pretraining set (splits train and val; valShifted unused). Absent: the long-tailed benchmark. */
    mode: z.enum(['longtail', 'pretrain']).optional(),
    seed: z.number().int().default(0),
    size: positiveInt.default(64),
    train: positiveInt.default(SYNTHETIC_DEFAULT_COUNTS.train),
    val: positiveInt.default(SYNTHETIC_DEFAULT_COUNTS.val),
    valShifted: positiveInt.default(SYNTHETIC_DEFAULT_COUNTS['val-shifted']),
  })
  .strict();

/**
 * Initial weights of a run (fine-tuning), distinct from `--resume`: `from` is a finished run, a saved
 * model or a `.safetensors` file (torchvision's, timm's: read by the backbone adapter), taken
 * relative to the config file; `parts` are the parts of the model loaded from it, the others start
 * afresh.
 */
const init = z
  .object({
    from: z.string().min(1),
    parts: z.array(z.enum(['backbone', 'classifier', 'selection'])).min(1).default(['backbone', 'classifier']),
  })
  .strict();

/** Per-part learning-rate factors (mmsegmentation's paramwise_cfg). */
const lrMultipliers = z
  .object({ backbone: z.number().min(0).optional(), classifier: z.number().min(0).optional(), selection: z.number().min(0).optional() })
  .strict();

/**
 * The pixel loss of the cross-entropy terms: `kind` ce, focal or ohem; `classWeights` none, inverse
 * (1 / pixel share), median (median-frequency balancing) or one weight per class.
 */
const loss = z
  .object({
    kind: z.enum(['ce', 'focal', 'ohem']).default('ce'),
    classWeights: z.union([z.enum(['none', 'inverse', 'median']), z.array(z.number().min(0)).min(2)]).default('none'),
    gamma: z.number().min(0).optional(),
    threshold: z.number().gt(0).max(1).optional(),
    minKept: positiveInt.optional(),
  })
  .strict()
  .refine((l) => l.kind === 'focal' || l.gamma === undefined, { message: 'gamma is the focal loss\'s: set kind to "focal" or remove gamma', path: ['gamma'] })
  .refine((l) => l.kind === 'ohem' || (l.threshold === undefined && l.minKept === undefined), { message: 'threshold and minKept are OHEM\'s: set kind to "ohem" or remove them', path: ['kind'] });

const dataset = z
  .object({
    kind: z.enum(['folder', 'cityscapes', 'voc']),
    root: z.string().min(1),
    trainSplit: z.string().default('train'),
    evalSplits: z.array(z.string()).min(1).default(['val']),
    /** Writes the synthetic long-tailed benchmark to `root` when it is not there yet (folder kind only). */
    generate: synthetic.optional(),
    /** Leave out the samples the check before the run finds bad (listed when the run starts) instead of stopping. */
    skipBad: z.boolean().optional(),
  })
  .strict();

export const runConfigSchema = z
  .object({
    backbone,
    dataset,
    numClasses: positiveInt.min(2).optional(),
    crop: z.tuple([positiveInt, positiveInt]),
    scale: z.tuple([z.number().positive(), z.number().positive()]).default([1, 1]),
    flip: z.boolean().default(true),
    mean: z.tuple([z.number(), z.number(), z.number()]).default((): [number, number, number] => [...IMAGENET_MEAN]),
    std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default((): [number, number, number] => [...IMAGENET_STD]),
    batchSize: positiveInt,
    iterations: positiveInt,
    learningRate: z.number().positive().default(0.01),
    momentum: z.number().min(0).max(1).default(0.9),
    weightDecay: z.number().min(0).default(5e-4),
    polyPower: z.number().min(0).default(0.9),
    dropclass: z.boolean().default(true),
    alpha: z.number().min(0).default(10),
    seed: z.number().int().default(0),
    evalEvery: z.number().int().min(0).default(0),
    checkpointEvery: positiveInt.default(100),
    rareThreshold: z.number().positive().max(1).default(0.01),
    /** Images evaluated together when they have the same size (windows are always one image at a time). */
    evalBatchSize: positiveInt.default(4),
    inference: inference.default({ flip: false, scales: [1] }),
    // Optional, without defaults: a config that leaves them out hashes as before they existed.
    init: init.optional(),
    lrMultipliers: lrMultipliers.optional(),
    freezeBackboneNorm: z.boolean().optional(),
    loss: loss.optional(),
  })
  .strict()
  .refine((c) => c.scale[0] <= c.scale[1], { message: 'scale must be [min, max] with min <= max', path: ['scale'] });

export type RunConfig = z.infer<typeof runConfigSchema>;

/** A config error that names the file, the key and what is expected. */
export class ConfigError extends Error {}

/** What a key the run config must give holds, for the message when it is missing. */
const REQUIRED_KEYS: Record<string, string> = {
  backbone: 'the backbone, e.g. { "kind": "unet" }',
  'backbone.kind': 'a registered backbone\'s name, e.g. "unet" or "deeplabv3"',
  dataset: 'the dataset, e.g. { "kind": "folder", "root": "data/synthetic" }',
  'dataset.kind': 'one of "folder", "cityscapes", "voc"',
  'dataset.root': 'the dataset\'s folder, relative to the config file',
  crop: 'the training crop [height, width] in pixels, e.g. [512, 1024]',
  batchSize: 'images per training step, a positive whole number, e.g. 8',
  iterations: 'the number of training steps, a positive whole number, e.g. 1000',
};

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  return path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), raw);
}

function describeIssues(file: string, error: z.ZodError, raw?: unknown): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'invalid_type' && raw !== undefined && valueAt(raw, issue.path) === undefined) {
      return `  ${key}: missing; give ${REQUIRED_KEYS[key] ?? `a value (${issue.expected})`} (dropclass config --print shows a complete run config)`;
    }
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${issue.path.join('.')}.` : '';
      return `  unknown key ${issue.keys.map((k) => `"${where}${k}"`).join(', ')}: remove it or check its spelling`;
    }
    return `  ${key}: ${issue.message}`;
  });
  return `${file}: invalid run config\n${lines.join('\n')}`;
}

const baseDir = (file: string) => (file === '<config>' ? process.cwd() : dirname(resolve(file)));

/** Completes the backbone options with the adapter's own schema; the adapter must be registered. */
function parseBackbone(config: RunConfig, file: string): void {
  const { kind } = config.backbone;
  let adapter;
  try {
    adapter = getBackbone(kind);
  } catch (error) {
    const hint = config.backbone.package
      ? `backbone.package ${config.backbone.package} is not imported yet: load the config with loadRunConfig or resolveRunConfig, which import it`
      : (error as Error).message;
    throw new ConfigError(`${file}: backbone.kind "${kind}": ${hint}`);
  }
  try {
    config.backbone.options = adapter.parseOptions(config.backbone.options) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof BackboneOptionsError)) throw error;
    const lines = error.issues.map((i) => `  backbone.options${i.path ? `.${i.path}` : ''}: ${i.message}`);
    throw new ConfigError(`${file}: invalid options for the ${kind} backbone\n${lines.join('\n')}`);
  }
  if (!config.backbone.package && adapter.package) config.backbone.package = adapter.package;
}

/**
 * Parses and checks a run config; paths in it are taken relative to the config file. The backbone's
 * adapter must be registered already (the built-in ones are; use {@link resolveRunConfig} for a
 * config that names a backbone package). `checkBackbone: false` leaves the backbone as written,
 * for reading the saved config of a run whose adapter is not at hand.
 */
export function parseRunConfig(raw: unknown, file = '<config>', options: { checkBackbone?: boolean } = {}): RunConfig {
  const result = runConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(file, result.error, raw));
  const config = result.data;
  if (options.checkBackbone ?? true) parseBackbone(config, file);
  const base = baseDir(file);
  config.dataset.root = resolve(base, config.dataset.root);
  if (config.init) config.init.from = resolve(base, config.init.from);
  if (config.dataset.kind !== 'folder' && config.dataset.generate) {
    throw new ConfigError(`${file}: dataset.generate writes the synthetic benchmark, which is a folder dataset; set dataset.kind to "folder" or remove dataset.generate`);
  }
  if (!config.dataset.generate && !existsSync(config.dataset.root)) {
    throw new ConfigError(`${file}: dataset.root ${config.dataset.root} does not exist; point it at the dataset on disk`);
  }
  return config;
}

/**
 * Like {@link parseRunConfig}, but first imports the config's `backbone.package` when its adapter is
 * not registered yet, resolving it from the config file's directory, then the working directory.
 */
export async function resolveRunConfig(raw: unknown, file = '<config>'): Promise<RunConfig> {
  const backbone = (raw as { backbone?: { kind?: unknown; package?: unknown } } | null)?.backbone;
  if (typeof backbone?.package === 'string' && backbone.package) {
    try {
      await importBackbonePackage(backbone.package, [baseDir(file), process.cwd()], typeof backbone.kind === 'string' ? backbone.kind : undefined);
    } catch (error) {
      throw new ConfigError(`${file}: backbone.package: ${(error as Error).message}`);
    }
  }
  return parseRunConfig(raw, file);
}

/**
 * Reads, imports the backbone package of, and checks a run config file: comments allowed, `extends`
 * followed, then `overrides` (`key=value`, as `--set`) applied; see `readConfigFile`.
 */
export async function loadRunConfig(file: string, overrides: string[] = []): Promise<RunConfig> {
  const config = await resolveRunConfig(applyOverrides(await readConfigFile(file), overrides), file);
  // Checked here, where a user's config file is read; a job that plans runs before their init source is trained parses configs without it.
  if (config.init && !existsSync(config.init.from)) {
    throw new ConfigError(`${file}: init.from ${config.init.from} does not exist; give a finished run, a saved model or a .safetensors file (relative to the config file)`);
  }
  return config;
}
