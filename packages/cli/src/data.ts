import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Batch,
  type PairedDataset,
  type Rgb,
  type SyntheticStats,
  computeClassFrequencies,
  createBatchStream,
  formatSyntheticStats,
  SYNTHETIC_STATS_JSON,
  ensureSynthetic,
  openDataset,
} from '@dropclass/datasets';
import type { RunConfig } from './config.js';

export interface TrainingData {
  train: PairedDataset;
  classNames: string[];
  palette: Rgb[];
  numClasses: number;
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

export async function openTrainingData(config: RunConfig, log: (line: string) => void): Promise<TrainingData> {
  await ensureSyntheticData(config, log);
  const train = await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split: config.dataset.trainSplit });
  const numClasses = config.numClasses ?? train.classNames.length;
  if (numClasses !== train.classNames.length) {
    throw new Error(`numClasses is ${numClasses} but the ${config.dataset.kind} dataset at ${config.dataset.root} has ${train.classNames.length} classes; remove numClasses from the config or fix it`);
  }
  return { train, classNames: train.classNames, palette: train.palette, numClasses };
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
