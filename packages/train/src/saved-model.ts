import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropClassModel, InferenceOptions } from '@dropclass/core';
import { MODEL_INFO_FILE, loadModel, readModelInfo } from '@dropclass/core/node';
import { type DatasetKind, type Rgb, defaultPalette, openDataset } from '@dropclass/datasets';
import { type BackendName, initBackend } from '@dropclass/tfjs-wasm-train';
import { importBackbonePackage } from './backbones.js';
import { type ModelSource, describeStep, modelSource, refusePartial, resolveModelDir } from './checkpoint.js';
import { type RunConfig, parseRunConfig, resolveRunConfig } from './config.js';
import { diagnoseDependency } from './diagnose.js';
import { evaluateReport } from './evaluate-report.js';
import { checkExportTarget, exportModel, formatExportReport } from './export.js';
import { CONFIG_JSON } from './paths.js';
import { predictFiles } from './predict.js';

type Log = (line: string) => void;

/** What every command on a saved model takes: the compute backend (default: the best installed) and where lines go. */
export interface SavedModelCommon {
  backend?: BackendName;
  log: Log;
}

/** A saved model with what prediction and evaluation need: its run config when it has one, else its metadata. */
export interface SavedModel {
  model: DropClassModel;
  config?: RunConfig;
  meta: { classNames: string[]; palette: Rgb[]; mean: Rgb; std: Rgb };
}

/**
 * Imports the package that registers a saved model's backbone (recorded in its dropclass.json), so
 * that its layers load. Returns what to tell the user when that package cannot be imported.
 */
async function importModelBackbone(modelDir: string, runDir: string | undefined): Promise<string | undefined> {
  const infoFile = join(modelDir, MODEL_INFO_FILE);
  const info = await readModelInfo(modelDir);
  const source = info.backbone.source;
  if (!source?.package) return undefined;
  try {
    await importBackbonePackage(source.package, [process.cwd(), ...(runDir ? [runDir] : []), modelDir], source.kind);
    return undefined;
  } catch (error) {
    return `${infoFile}: this model needs the ${source.kind} backbone from ${source.package}. ${(error as Error).message}`;
  }
}

/**
 * Loads a run directory (its newest checkpoint) or a saved model directory, importing the package
 * its backbone came from; with the run's config when there is one.
 */
export async function loadSavedModel(path: string, log: Log): Promise<SavedModel> {
  return loadResolved(await resolveModelDir(path), log);
}

/** {@link loadSavedModel} of a model directory already found (and its run's, if any). */
async function loadResolved({ modelDir, runDir }: { modelDir: string; runDir?: string }, log: Log): Promise<SavedModel> {
  const missing = await importModelBackbone(modelDir, runDir);
  let model: DropClassModel;
  try {
    model = await loadModel(modelDir);
  } catch (error) {
    // tfjs's "Unknown layer" (or whatever else failed) comes from the package not being there
    throw missing ? new Error(missing) : error;
  }
  // a backbone of stock tfjs layers loads without its package
  if (missing) log(`warning: ${missing}`);
  let config: RunConfig | undefined;
  try {
    if (runDir) {
      const file = join(runDir, CONFIG_JSON);
      const raw = JSON.parse(await readFile(file, 'utf8'));
      // the model loaded without its backbone package: the run's backbone options cannot be checked, and need not be
      config = missing ? parseRunConfig(raw, file, { checkBackbone: false }) : await resolveRunConfig(raw, file);
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  const m = model.info.metadata;
  const classNames = m.classNames ?? Array.from({ length: model.numClasses }, (_, i) => `class ${i}`);
  return {
    model,
    config,
    meta: { classNames, palette: m.palette ?? defaultPalette(classNames.length), mean: m.mean ?? config?.mean ?? [0, 0, 0], std: m.std ?? config?.std ?? [1, 1, 1] },
  };
}

/**
 * Refuses an unfinished run for `what` unless `allowPartial`, starts the backend, runs `before`,
 * loads the model, runs `use` on it and disposes it.
 */
async function withSavedModel<T>(
  path: string,
  what: string,
  options: SavedModelCommon & { allowPartial?: boolean },
  use: (saved: SavedModel, source: ModelSource) => Promise<T>,
  before?: () => Promise<void>,
): Promise<T> {
  const source = await modelSource(path);
  refusePartial(path, source, what, options.allowPartial);
  await initBackend({ backend: options.backend });
  await before?.();
  const saved = await loadResolved(source, options.log);
  try {
    return await use(saved, source);
  } finally {
    saved.model.dispose();
  }
}

/** The run config's inference settings with the given ones over them (a new window drops the config's stride). */
function inferenceOver(given: InferenceOptions, config?: RunConfig): InferenceOptions {
  const base: InferenceOptions = config?.inference ?? {};
  const window = given.window ?? base.window;
  return { window, stride: given.stride ?? (given.window ? undefined : base.stride), flip: given.flip ?? base.flip, scales: given.scales ?? base.scales };
}

export interface EvaluateSavedOptions extends SavedModelCommon {
  /** Dataset kind and root (default: the run config's). */
  kind?: DatasetKind;
  root?: string;
  /** Splits to evaluate (default: the run config's evaluation splits). */
  splits?: string[];
  format: 'terminal' | 'markdown' | 'json';
  /** The split whose pixel frequencies group the classes (default: the training split). */
  frequenciesSplit?: string;
  batchSize?: number;
  inference: InferenceOptions;
  allowPartial?: boolean;
  skipBad?: boolean;
}

/** `dropclass eval`: evaluates a run or saved model on dataset splits; returns the report to print. */
export function evaluateSavedModel(path: string, options: EvaluateSavedOptions): Promise<string> {
  return withSavedModel(path, 'evaluate', options, async ({ model, config, meta }, source) => {
    const kind = options.kind ?? config?.dataset.kind;
    const root = options.root ?? config?.dataset.root;
    if (!kind || !root) throw new Error(`${path} has no run config: give --kind and --root`);
    const splits = options.splits ?? config?.dataset.evalSplits ?? ['val'];
    return evaluateReport(model, model.info.metadata.classNames, {
      modelPath: path,
      source,
      kind,
      root,
      splits,
      // another dataset than the run's need not have its training split
      frequenciesSplit: options.frequenciesSplit ?? (options.root || options.kind ? splits[0] : (config?.dataset.trainSplit ?? splits[0])),
      format: options.format,
      mean: meta.mean,
      std: meta.std,
      batchSize: options.batchSize ?? config?.evalBatchSize,
      inference: inferenceOver(options.inference, config),
      rareThreshold: config?.rareThreshold,
      skipBad: options.skipBad ?? config?.dataset.skipBad,
      log: options.log,
    });
  });
}

/** `dropclass predict`: colour-coded masks and overlays of an image or a folder, and `predictions.json` saying what they came from. */
export function predictWithSavedModel(path: string, options: SavedModelCommon & { input: string; out: string; inference: InferenceOptions; allowPartial?: boolean; skipBad?: boolean }): Promise<string[]> {
  return withSavedModel(path, 'predict with', options, async ({ model, config, meta }, source) => {
    let skipped: { file: string; reason: string }[] = [];
    const onSkipped = (s: typeof skipped) => {
      skipped = s;
      for (const { file, reason } of s) options.log(`skipped (--skip-bad): ${file}: ${reason}`);
    };
    const files = await predictFiles(model, options.input, options.out, { ...meta, inference: inferenceOver(options.inference, config), skipBad: options.skipBad, onSkipped });
    const record = { format: 'dropclass-predictions/1', model: { path, step: source.step, iterations: source.iterations, partial: source.partial }, input: options.input, written: files, skipped };
    await writeFile(join(options.out, 'predictions.json'), `${JSON.stringify(record, null, 2)}\n`);
    options.log(`wrote ${files.length} files to ${options.out} (model ${path}, ${describeStep(source)})`);
    return files;
  });
}

/** `dropclass export`: a stock tfjs Layers model, with its weight bytes and (when the run names a dataset) its mIoU; returns the report to print. */
export function exportSavedModel(path: string, options: SavedModelCommon & { out?: string; quantize?: 'float16'; split?: string; evaluate: boolean; allowPartial?: boolean }): Promise<string> {
  const out = options.out ?? join(path, 'export');
  return withSavedModel(path, 'export', options, async ({ model, config }, source) => {
    const scratch = await mkdtemp(join(tmpdir(), 'dropclass-export-'));
    try {
      let evaluation;
      if (options.evaluate && config) {
        const split = options.split ?? 'val';
        evaluation = { split, dataset: await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split }) };
      } else if (options.evaluate) {
        options.log(`${path} has no run config, so its dataset is unknown: the mIoU is not measured (export a run directory to measure it)`);
      }
      const report = await exportModel(model, { out, quantize: options.quantize ?? 'none', evaluation, scratch });
      return `${formatExportReport(report)}\nexported from ${path}, ${describeStep(source)}`;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, () => checkExportTarget(out));
}

/** `dropclass diagnose`: the class-dependency diagnostic of a run on one split; returns what to print. */
export async function diagnoseSavedModel(path: string, options: SavedModelCommon & { split: string; channels?: number; limit?: number; title?: string; out?: string }): Promise<string> {
  await initBackend({ backend: options.backend });
  const { model, config, meta } = await loadSavedModel(path, options.log);
  try {
    if (!config) throw new Error(`${path} has no run config, so its dataset is unknown; diagnose a run directory`);
    const ds = await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split: options.split });
    const dep = await diagnoseDependency(model, ds, { mean: meta.mean, std: meta.std, out: options.out ?? path, channels: options.channels, limit: options.limit, title: options.title ?? `Class dependency (${options.split})` });
    return `${dep.intervention}\nmean off-diagonal IoU drop: ${(100 * dep.meanOffDiagonalDrop).toFixed(2)} points`;
  } finally {
    model.dispose();
  }
}
