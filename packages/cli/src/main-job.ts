import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DropClassModel } from '@dropclass/core';
import { openDataset } from '@dropclass/datasets';
import { type RunConfig, parseRunConfig } from './config.js';
import { diagnoseDependency } from './diagnose.js';
import { readEvalFile, writeComparison } from './run-report.js';
import { Checkpoints } from './checkpoint.js';
import { EVAL_JSON } from './paths.js';
import { train } from './train.js';
import { nanMean } from '@dropclass/metrics';

export interface MainJobOptions {
  /** Where the runs and the report go. Default runs/main. */
  out: string;
  /** Where the synthetic benchmark is written (once). Default data/synthetic. */
  data: string;
  /** A few steps on tiny data: for tests and CI. */
  quick: boolean;
  /** Seeds to run; with several, the report gives mean and spread. */
  seeds: number;
  iterations?: number;
  log: (line: string) => void;
}

/** The main job's run config: a small U-Net on the synthetic benchmark, on a 2-core budget. */
export function mainJobConfig(options: Pick<MainJobOptions, 'data' | 'quick' | 'iterations'>, seed: number, dropclass: boolean): RunConfig {
  const quick = options.quick;
  return parseRunConfig({
    backbone: { kind: 'unet', options: quick ? { base: 4, depth: 2 } : { base: 8, depth: 3 } },
    dataset: {
      kind: 'folder',
      root: options.data,
      trainSplit: 'train',
      evalSplits: ['val', 'val-shifted'],
      generate: quick ? { seed: 0, size: 32, train: 24, val: 6, valShifted: 6 } : { seed: 0 },
    },
    crop: quick ? [32, 32] : [64, 64],
    scale: [0.75, 1.25],
    batchSize: 8,
    iterations: options.iterations ?? (quick ? 4 : 700),
    learningRate: 0.05,
    dropclass,
    seed,
    checkpointEvery: quick ? 2 : 100,
  });
}

const spread = (xs: number[]) => {
  const m = nanMean(xs);
  return Math.sqrt(nanMean(xs.map((x) => (x - m) ** 2)));
};
const pct = (v: number) => (Number.isNaN(v) ? 'n/a' : (100 * v).toFixed(1));

/**
 * The main job: writes the synthetic long-tailed, context-biased benchmark if it is not there,
 * trains a baseline and a DropClass U-Net (same seed, same steps) per seed, evaluates both on val
 * and val-shifted, prints the comparison and writes the report. An interrupted job resumes.
 */
export async function runMainJob(options: MainJobOptions): Promise<string> {
  const { log } = options;
  await mkdir(options.out, { recursive: true });
  const seeds = Array.from({ length: options.seeds }, (_, i) => i);
  const sections: string[] = [];
  const deltas: Record<string, { frequent: number[]; rare: number[]; mIoU: number[] }> = {};
  const dependency: { baseline: number[]; dropclass: number[] } = { baseline: [], dropclass: [] };
  for (const seed of seeds) {
    const seedDir = join(options.out, `seed-${seed}`);
    for (const mode of ['baseline', 'dropclass'] as const) {
      const runDir = join(seedDir, mode);
      if (existsSync(join(runDir, EVAL_JSON))) {
        log(`${relative('.', runDir)} is complete; reusing it`);
        continue;
      }
      const config = mainJobConfig(options, seed, mode === 'dropclass');
      const resume = (await new Checkpoints(join(runDir, 'checkpoints')).latest()) !== undefined;
      log(`\n== seed ${seed}: ${mode} (${config.iterations} steps)`);
      const result = await train(config, { out: runDir, resume, log });
      result.model.dispose();
      if (result.interrupted) throw new Error(`interrupted; run the same command again to resume`);
    }
    const [a, b] = [await readEvalFile(join(seedDir, 'baseline')), await readEvalFile(join(seedDir, 'dropclass'))];
    const comparison = await writeComparison(a, b, seedDir);
    log(`\nseed ${seed}: baseline vs DropClass (IoU %)\n${comparison.terminal}`);
    for (const [split, s] of Object.entries(comparison.comparison.splits)) {
      deltas[split] ??= { frequent: [], rare: [], mIoU: [] };
      deltas[split].frequent.push(s.groups.frequent.delta);
      deltas[split].rare.push(s.groups['under-represented'].delta);
      deltas[split].mIoU.push(s.mIoU.delta);
    }
    const config = mainJobConfig(options, seed, true);
    const val = await openDataset({ kind: 'folder', root: config.dataset.root, split: 'val' });
    for (const mode of ['baseline', 'dropclass'] as const) {
      const latest = await new Checkpoints(join(seedDir, mode, 'checkpoints')).latest();
      const model = await DropClassModel.load(latest!.dir);
      const dep = await diagnoseDependency(model, val, { mean: config.mean, std: config.std, out: join(seedDir, mode), title: `Class dependency of the ${mode} model (val)` });
      dependency[mode].push(dep.meanOffDiagonalDrop);
      model.dispose();
    }
    sections.push(`## Seed ${seed}\n\n${comparison.markdown.replace(/^# .*\n/, '').replace(/\]\((iou-[^)]+)\)/g, `](seed-${seed}/$1)`)}`);
  }
  const summary = [
    '| split | frequent mIoU delta | under-represented mIoU delta | mIoU delta |',
    '|:---|---:|---:|---:|',
    ...Object.entries(deltas).map(
      ([split, d]) => `| ${split} | ${pct(nanMean(d.frequent))} ± ${pct(spread(d.frequent))} | ${pct(nanMean(d.rare))} ± ${pct(spread(d.rare))} | ${pct(nanMean(d.mIoU))} ± ${pct(spread(d.mIoU))} |`,
    ),
  ].join('\n');
  const dependencyLine = `Class dependency on val (mean off-diagonal IoU drop when one class's features are suppressed, points): baseline ${pct(nanMean(dependency.baseline))}, DropClass ${pct(nanMean(dependency.dropclass))}.`;
  const report = [
    '# DropClass vs baseline on the synthetic long-tailed, context-biased benchmark',
    `U-Net, ${mainJobConfig(options, 0, true).iterations} steps per run, seeds ${seeds.join(', ')}. Deltas are DropClass minus baseline in IoU points (mean ± spread over seeds). ` +
      '`val` keeps the training context bias; `val-shifted` puts the objects on other contexts.',
    summary,
    dependencyLine,
    ...sections,
    ...seeds.map((s) => `Dependency heatmaps: [baseline](seed-${s}/baseline/dependency.png), [DropClass](seed-${s}/dropclass/dependency.png). Overlays: seed-${s}/*/overlays/.`),
  ].join('\n\n');
  await writeFile(join(options.out, 'report.md'), `${report}\n`);
  log(`\nDropClass - baseline, IoU points (mean ± spread over ${seeds.length} seed(s)):\n${summary}\n${dependencyLine}\nreport: ${join(options.out, 'report.md')}`);
  return report;
}
