import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropClassModel, LoadReport, ModelPart, PixelLossOptions } from '@dropclass/core';
import { getBackbone } from '@dropclass/core';
import { WEIGHTS_BIN, loadModel, readSafetensors } from '@dropclass/core/node';
import { classBalanceWeights, computeClassFrequencies } from '@dropclass/datasets';
import { resolveModelDir } from './checkpoint.js';
import { ConfigError, type RunConfig } from './config.js';
import type { TrainingData } from './data.js';
import { EVAL_JSON } from './paths.js';

/** What a run was initialised from, written to `<run>/init.json`. */
export interface InitRecord {
  from: string;
  /** A weight file, or a model saved by this toolkit (a run's newest checkpoint, a saved model directory). */
  kind: 'safetensors' | 'model';
  /** SHA-256 of the weight file (for a model: of its weights.bin). */
  sha256: string;
  /** For a model: the training step it was saved at. */
  step?: number;
  parts: ModelPart[];
  report: LoadReport;
}

export const INIT_JSON = 'init.json';

/**
 * Fills a new run's model from `config.init` (see the run config's `init`): a `.safetensors` file
 * through the backbone adapter's `torchWeights` map, strictly, or a finished run / saved model of
 * the same backbone. Logs what was loaded, skipped, ignored and newly initialised; returns the
 * record to keep in the run folder.
 */
export async function initialiseWeights(model: DropClassModel, config: RunConfig, log: (line: string) => void): Promise<InitRecord> {
  const { from, parts } = config.init!;
  const info = await stat(from).catch(() => undefined);
  if (!info) throw new ConfigError(`init.from ${from} does not exist; give a finished run, a saved model or a .safetensors file`);
  let record: InitRecord;
  if (info.isFile()) {
    const adapter = getBackbone(config.backbone.kind);
    if (!adapter.torchWeights) {
      throw new ConfigError(`init.from ${from}: the ${config.backbone.kind} backbone reads no PyTorch weight files; start from a run or saved model of this backbone instead`);
    }
    const { tensors } = await readSafetensors(from);
    let map;
    try {
      map = adapter.torchWeights([...tensors.keys()], config.backbone.options);
    } catch (error) {
      throw new ConfigError(`${from}: ${(error as Error).message}`);
    }
    const report = model.loadStateDict(tensors, { source: from, map, parts });
    record = { from, kind: 'safetensors', sha256: await sha256(from), parts, report };
  } else {
    const { modelDir, runDir } = await resolveModelDir(from);
    if (runDir === from && !existsSync(join(from, EVAL_JSON))) {
      throw new ConfigError(`init.from ${from} is an unfinished run; finish it first (dropclass train --resume), or give one of its checkpoint directories to start from that step`);
    }
    const source = await loadModel(modelDir);
    try {
      const report = model.loadWeightsFrom(source, { source: from, parts });
      record = { from, kind: 'model', sha256: await sha256(join(modelDir, WEIGHTS_BIN)), step: source.step, parts, report };
    } finally {
      source.dispose();
    }
  }
  for (const line of describeInit(record)) log(line);
  return record;
}

/** The log lines of an initialisation: counts per part, and what was left as it was and why. */
export function describeInit(record: InitRecord): string[] {
  const { report } = record;
  const byPart = (items: { part: ModelPart }[]) => {
    const counts = new Map<string, number>();
    for (const i of items) counts.set(i.part, (counts.get(i.part) ?? 0) + 1);
    return [...counts].map(([part, n]) => `${part} ${n}`).join(', ');
  };
  const source = `${record.from} (${report.description}${record.step !== undefined ? `, step ${record.step}` : ''})`;
  const lines = [`init: ${report.loaded.length} tensors loaded from ${source}: ${byPart(report.loaded)}`];
  if (report.initialised.length) {
    const reasons = new Map<string, number>();
    for (const i of report.initialised) reasons.set(`${i.part}: ${i.reason}`, (reasons.get(`${i.part}: ${i.reason}`) ?? 0) + 1);
    lines.push(`init: ${report.initialised.length} tensors newly initialised (${[...reasons].map(([r, n]) => `${r}, ${n}`).join('; ')})`);
  }
  if (report.skipped.length) lines.push(`init: ${report.skipped.length} tensors of the source skipped, their parts not loaded: ${byPart(report.skipped)}`);
  if (report.ignored.length) lines.push(`init: ${report.ignored.length} tensors of the source ignored: ${summariseKeys(report.ignored)}`);
  return lines;
}

/**
 * Ignored keys in a line: PyTorch's batch-norm counters counted once (`53 x *.num_batches_tracked`),
 * keys that share a first segment as that prefix (`aux_classifier.* (8)`), the rest by name.
 */
function summariseKeys(keys: string[]): string {
  const counters = keys.filter((k) => k.endsWith('.num_batches_tracked'));
  const rest = keys.filter((k) => !counters.includes(k));
  const first = (k: string) => k.split('.')[0];
  const prefixes = [...new Set(rest.map(first))].filter((p) => rest.filter((k) => first(k) === p).length > 2);
  return [
    ...rest.filter((k) => !prefixes.includes(first(k))),
    ...prefixes.map((p) => `${p}.* (${rest.filter((k) => first(k) === p).length})`),
    ...(counters.length ? [`${counters.length} x *.num_batches_tracked`] : []),
  ].join(', ');
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** Writes what a run was initialised from into its folder. */
export async function writeInitRecord(out: string, record: InitRecord): Promise<void> {
  await writeFile(join(out, INIT_JSON), JSON.stringify(record, null, 2));
}

/**
 * The run config's pixel loss with its class weights resolved: `inverse` and `median` from the
 * training split's class frequencies. Undefined for the plain cross-entropy (no `loss` key).
 */
export async function resolveLoss(config: RunConfig, data: TrainingData, log: (line: string) => void): Promise<PixelLossOptions | undefined> {
  if (!config.loss) return undefined;
  const { kind, classWeights, gamma, threshold, minKept } = config.loss;
  let weights: number[] | undefined;
  if (Array.isArray(classWeights)) {
    if (classWeights.length !== data.numClasses) {
      throw new ConfigError(`loss.classWeights has ${classWeights.length} weights, but the dataset has ${data.numClasses} classes (${data.classNames.join(', ')}); give one per class`);
    }
    weights = classWeights;
  } else if (classWeights !== 'none') {
    weights = classBalanceWeights(await computeClassFrequencies(data.train), classWeights);
  }
  const loss: PixelLossOptions = { kind, ...(weights ? { classWeights: weights } : {}), ...(gamma !== undefined ? { gamma } : {}), ...(threshold !== undefined ? { threshold } : {}), ...(minKept !== undefined ? { minKept } : {}) };
  const described = [
    kind === 'ce' ? 'cross-entropy' : kind === 'focal' ? `focal loss (gamma ${gamma ?? 2})` : `OHEM (threshold ${threshold ?? 0.7}, at least ${minKept ?? 100000} pixels)`,
    weights ? `class weights${typeof classWeights === 'string' ? ` (${classWeights === 'median' ? 'median frequency' : 'inverse frequency'})` : ''}: ${data.classNames.map((n, c) => `${n} ${weights![c].toFixed(3)}`).join(', ')}` : '',
  ];
  log(`loss: ${described.filter(Boolean).join(', ')}`);
  return loss;
}
