import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Batch,
  type PairedDataset,
  type Rgb,
  type SyntheticStats,
  type DataCheckResult,
  checkDataset,
  computeClassFrequencies,
  createBatchStream,
  defaultCheckCacheFile,
  formatSyntheticStats,
  SYNTHETIC_STATS_JSON,
  ensureSynthetic,
} from '@dropclass/datasets';
import type { RunConfig } from './config.js';

export interface TrainingData {
  train: PairedDataset;
  classNames: string[];
  palette: Rgb[];
  numClasses: number;
  /** The evaluation splits as checked before the run (bad samples left out with `dataset.skipBad`). */
  evalSets?: Record<string, PairedDataset>;
}

/**
 * Writes the synthetic benchmark when the config asks for it and it is not on disk yet; a folder
 * generated with other options stops the run (never reused silently).
 */
export async function ensureSyntheticData(config: RunConfig, log: (line: string) => void): Promise<void> {
  const generate = config.dataset.generate;
  if (!generate) return;
  const pretrain = generate.mode === 'pretrain';
  const options = {
    root: config.dataset.root,
    mode: generate.mode,
    seed: generate.seed,
    size: generate.size,
    counts: pretrain ? { train: generate.train, val: generate.val } : { train: generate.train, val: generate.val, 'val-shifted': generate.valShifted },
  };
  if (!existsSync(join(config.dataset.root, SYNTHETIC_STATS_JSON))) {
    log(`writing the synthetic ${pretrain ? 'pretraining set (balanced classes and contexts)' : 'long-tailed benchmark'} to ${config.dataset.root} (seed ${generate.seed})`);
  }
  const { stats, generated } = await ensureSynthetic(options);
  if (generated) log(formatSyntheticStats(stats));
}

/**
 * Checks every split the run reads before its first step (see `checkDataset`): every problem is
 * listed at once in the error, or with `dataset.skipBad` the bad samples are left out and listed
 * in the log. Says what the check cost.
 */
export async function checkRunData(config: RunConfig, log: (line: string) => void): Promise<DataCheckResult> {
  const { kind, root, trainSplit, evalSplits } = config.dataset;
  const splits = [...new Set([trainSplit, ...evalSplits])];
  const result = await checkDataset({
    kind,
    root,
    splits,
    numClasses: config.numClasses,
    batchSize: config.batchSize,
    skipBad: config.dataset.skipBad,
    cacheFile: defaultCheckCacheFile(kind, root),
  });
  log(
    `checked ${result.samples} samples of ${splits.join(', ')} in ${(result.ms / 1000).toFixed(2)} s (${result.decoded} read, ${result.cached} unchanged since the last check)`,
  );
  if (result.cacheNote) log(`note: ${result.cacheNote}`);
  for (const s of result.skipped) log(`skipped (dataset.skipBad): ${s.split}: ${s.file ? `${s.file}: ` : ''}${s.message}`);
  return result;
}

export async function openTrainingData(config: RunConfig, log: (line: string) => void): Promise<TrainingData> {
  await ensureSyntheticData(config, log);
  const checked = await checkRunData(config, log);
  const train = checked.datasets[config.dataset.trainSplit];
  const numClasses = config.numClasses ?? train.classNames.length;
  if (numClasses !== train.classNames.length) {
    throw new Error(`numClasses is ${numClasses} but the ${config.dataset.kind} dataset at ${config.dataset.root} has ${train.classNames.length} classes; remove numClasses from the config or fix it`);
  }
  const evalSets = Object.fromEntries(config.dataset.evalSplits.map((split) => [split, checked.datasets[split]]));
  return { train, classNames: train.classNames, palette: train.palette, numClasses, evalSets };
}

/** Training batches from step `startStep` on: the same batches an uninterrupted run would see. */
export function trainingBatches(data: TrainingData, config: RunConfig, startStep: number): AsyncGenerator<Batch> {
  return createBatchStream(data.train, {
    batchSize: config.batchSize,
    crop: config.crop,
    scale: config.scale,
    flip: config.flip,
    mean: config.mean,
    std: config.std,
    seed: config.seed,
    startBatch: startStep,
  });
}

/** Each class's share of the training pixels: from the generator's stats.json when there is one. */
export async function trainingFrequencies(data: TrainingData, config: RunConfig): Promise<number[]> {
  const statsFile = join(config.dataset.root, 'stats.json');
  if (config.dataset.kind === 'folder' && existsSync(statsFile)) {
    const stats = JSON.parse(await readFile(statsFile, 'utf8')) as SyntheticStats;
    const split = stats.splits[config.dataset.trainSplit as keyof SyntheticStats['splits']];
    if (split) return split.pixelFrequency;
  }
  return (await computeClassFrequencies(data.train)).fraction;
}
