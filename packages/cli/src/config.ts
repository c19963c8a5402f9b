import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD } from '@dropclass/datasets';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

const unetOptions = z
  .object({
    base: positiveInt.default(16),
    depth: positiveInt.max(6).default(4),
    upsampling: z.enum(['bilinear', 'transposed']).default('bilinear'),
  })
  .strict();

const deeplabOptions = z
  .object({
    layout: z.enum(['resnet18', 'resnet34']).default('resnet18'),
    width: z.number().positive().max(4).default(1),
    outputStride: z.union([z.literal(8), z.literal(16)]).default(16),
  })
  .strict();

const backbone = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('unet'), options: unetOptions.default(unetOptions.parse({})) }).strict(),
  z.object({ kind: z.literal('deeplabv3'), options: deeplabOptions.default(deeplabOptions.parse({})) }).strict(),
]);

const synthetic = z
  .object({
    seed: z.number().int().default(0),
    size: positiveInt.default(64),
    train: positiveInt.default(600),
    val: positiveInt.default(100),
    valShifted: positiveInt.default(100),
  })
  .strict();

const dataset = z
  .object({
    kind: z.enum(['folder', 'cityscapes', 'voc']),
    root: z.string().min(1),
    trainSplit: z.string().default('train'),
    evalSplits: z.array(z.string()).min(1).default(['val']),
    /** Writes the synthetic long-tailed benchmark to `root` when it is not there yet (folder kind only). */
    generate: synthetic.optional(),
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
  })
  .strict()
  .refine((c) => c.scale[0] <= c.scale[1], { message: 'scale must be [min, max] with min <= max', path: ['scale'] });

export type RunConfig = z.infer<typeof runConfigSchema>;

/** A config error that names the file, the key and what is expected. */
export class ConfigError extends Error {}

function describeIssues(file: string, error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${issue.path.join('.')}.` : '';
      return `  unknown key ${issue.keys.map((k) => `"${where}${k}"`).join(', ')}: remove it or check its spelling`;
    }
    return `  ${key}: ${issue.message}`;
  });
  return `${file}: invalid run config\n${lines.join('\n')}`;
}

/** Parses and checks a run config; paths in it are taken relative to the config file. */
export function parseRunConfig(raw: unknown, file = '<config>'): RunConfig {
  const result = runConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(file, result.error));
  const config = result.data;
  const base = file === '<config>' ? process.cwd() : dirname(resolve(file));
  config.dataset.root = resolve(base, config.dataset.root);
  if (config.dataset.kind !== 'folder' && config.dataset.generate) {
    throw new ConfigError(`${file}: dataset.generate writes the synthetic benchmark, which is a folder dataset; set dataset.kind to "folder" or remove dataset.generate`);
  }
  if (!config.dataset.generate && !existsSync(config.dataset.root)) {
    throw new ConfigError(`${file}: dataset.root ${config.dataset.root} does not exist; point it at the dataset on disk`);
  }
  return config;
}

export async function loadRunConfig(file: string): Promise<RunConfig> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`${file}: cannot read the run config (${error.code ?? error.message})`);
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return parseRunConfig(raw, file);
}
