import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type DropClassModel, type InferenceOptions, NO_CLASS_DROPPED, inferClasses } from '@dropclass/core';
import { type PairedDataset, type Rgb, createEvalStream } from '@dropclass/datasets';
import {
  ConfusionMatrix,
  type ConfusionMatrixJSON,
  type PerImageConfusionJSON,
  type RunComparison,
  type RunResults,
  classReport,
  compareRuns,
  formatComparison,
  formatReport,
  groupOf,
  bootstrapIoU,
  pairedBootstrapIoU,
  PerImageConfusion,
  renderTable,
  type Interval,
  type IouIntervals,
  type PairedInterval,
  renderIouBars,
  renderLineChart,
  renderOverlay,
} from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import type { SplitEvaluation } from './evaluate.js';
import { killPoint } from './faults.js';
import { EVAL_JSON, METRICS_JSONL } from './paths.js';

/** What a run's evaluation saves: enough to report and compare without the model. */
export interface EvalFile {
  /** Version 2 adds `perImage`; version 1 files are read without it (no intervals). */
  format: 'dropclass-eval/1' | 'dropclass-eval/2';
  name: string;
  classNames: string[];
  palette: Rgb[];
  frequencies: number[];
  rareThreshold: number;
  step: number;
  splits: Record<string, ConfusionMatrixJSON>;
  /** Per split, one confusion matrix per image, in the split's order: for bootstrap intervals. */
  perImage?: Record<string, PerImageConfusionJSON>;
}

export async function readEvalFile(run: string): Promise<EvalFile> {
  const file = join(run, EVAL_JSON);
  if (!existsSync(file)) throw new Error(`${file} is missing: ${run} is not an evaluated run (train it to the end, or run dropclass eval)`);
  return JSON.parse(await readFile(file, 'utf8')) as EvalFile;
}

export function runResults(evalFile: EvalFile): RunResults {
  return { name: evalFile.name, splits: Object.fromEntries(Object.entries(evalFile.splits).map(([s, m]) => [s, ConfusionMatrix.fromJSON(m).result()])) };
}

/** Training curves of a run from its metrics log. */
export async function renderLossCurves(run: string): Promise<Buffer | undefined> {
  const file = join(run, METRICS_JSONL);
  if (!existsSync(file)) return undefined;
  const points = (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; lossCe?: number; lossDrop?: number; lossSup?: number })
    .filter((p) => p.lossCe !== undefined)
    .flatMap((p) => [
      { step: p.step, value: p.lossCe!, series: 'cross-entropy' },
      { step: p.step, value: p.lossDrop!, series: 'cross-entropy, class dropped' },
      { step: p.step, value: p.lossSup!, series: 'suppression' },
    ]);
  return points.length ? renderLineChart(points, { title: `Loss terms of ${basename(run)}`, yTitle: 'loss' }) : undefined;
}

/** Writes colour-coded overlays (image | ground truth | prediction) of the first `count` samples. */
export async function writeOverlays(
  model: DropClassModel,
  ds: PairedDataset,
  dir: string,
  options: { count: number; mean: Rgb; std: Rgb; palette: Rgb[]; inference?: InferenceOptions },
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for await (const batch of createEvalStream(ds, { batchSize: 1, mean: options.mean, std: options.std })) {
    const prediction = inferClasses(model, batch.images, { ...options.inference, droppedClass: NO_CLASS_DROPPED });
    const sample = batch.samples[0];
    const png = await renderOverlay({ image: sample.image, prediction: prediction.dataSync() as Int32Array, label: sample.label.data, palette: options.palette });
    tf.dispose([prediction, batch.images, batch.labels]);
    const file = join(dir, `${sample.id.replace(/[\\/]/g, '_')}.png`);
    await writeFile(file, png);
    files.push(file);
    if (files.length >= options.count) break;
  }
  return files;
}

/** eval.json, the per-split tables as report.md, and the loss curves. Returns the Markdown. */
export async function writeRunReport(run: string, evalFile: EvalFile, evaluation: SplitEvaluation): Promise<string> {
  const options = { classNames: evalFile.classNames, frequencies: evalFile.frequencies, rareThreshold: evalFile.rareThreshold };
  const groups = evalFile.frequencies.map((f) => groupOf(f, evalFile.rareThreshold));
  const sections = Object.entries(evaluation.results).map(([split, result]) => {
    const perImage = evaluation.perImage[split];
    const ci = perImage ? intervalTable(evalFile.classNames, [['IoU', bootstrapIoU([perImage], { groups })]], perImage.length) : '';
    return `## ${split}\n\n${formatReport(classReport(result, options), 'markdown')}${ci ? `\n\n${ci}` : ''}`;
  });
  const curves = await renderLossCurves(run);
  if (curves) await writeFile(join(run, 'loss.png'), curves);
  const markdown = [`# ${evalFile.name}`, `Evaluated at step ${evalFile.step}.`, ...sections, ...(curves ? ['![loss terms](loss.png)'] : [])].join('\n\n');
  await writeFile(join(run, 'report.md'), `${markdown}\n`);
  killPoint('report');
  // Last, and whole or not at all: eval.json marks the run as evaluated.
  const temporary = join(run, `${EVAL_JSON}.tmp-${process.pid}`);
  await writeFile(temporary, JSON.stringify(evalFile));
  await rename(temporary, join(run, EVAL_JSON));
  return markdown;
}

/** The side-by-side report of two runs: Markdown, JSON and one IoU bar chart per split. */
export async function writeComparison(a: EvalFile, b: EvalFile, outDir: string): Promise<{ comparison: RunComparison; markdown: string; terminal: string; charts: string[] }> {
  await mkdir(outDir, { recursive: true });
  const options = { classNames: a.classNames, frequencies: a.frequencies, rareThreshold: a.rareThreshold };
  if (a.classNames.join() !== b.classNames.join()) throw new Error(`runs ${a.name} and ${b.name} have different classes; compare runs of one dataset`);
  const comparison = compareRuns(runResults(a), runResults(b), options);
  const charts: string[] = [];
  for (const split of Object.keys(comparison.splits)) {
    const file = join(outDir, `iou-${split}.png`);
    await writeFile(file, await renderIouBars(comparison, split));
    charts.push(file);
  }
  const groups = a.frequencies.map((f) => groupOf(f, a.rareThreshold));
  const intervals = Object.keys(comparison.splits)
    .filter((split) => a.perImage?.[split] && b.perImage?.[split])
    .map((split) => {
      const [pa, pb] = [PerImageConfusion.fromJSON(a.perImage![split]), PerImageConfusion.fromJSON(b.perImage![split])];
      if (pa.length !== pb.length) return `### ${split}: the runs were evaluated on different images (${pa.length} and ${pb.length}); no paired intervals`;
      const table = intervalTable(a.classNames, [[a.name, bootstrapIoU([pa], { groups })], [b.name, bootstrapIoU([pb], { groups })], [`delta`, pairedBootstrapIoU([pa], [pb], { groups })]], pa.length);
      return `### ${split}, with 95% intervals\n\n${table}`;
    });
  const markdown = [
    `# ${a.name} vs ${b.name}`,
    `Classes under ${(100 * a.rareThreshold).toFixed(1)}% of the training pixels count as under-represented. IoU in percent; delta = ${b.name} - ${a.name}.`,
    formatComparison(comparison, 'markdown'),
    ...intervals,
    ...charts.map((c) => `![${basename(c)}](${basename(c)})`),
  ].join('\n\n');
  await writeFile(join(outDir, 'comparison.md'), `${markdown}\n`);
  await writeFile(join(outDir, 'comparison.json'), formatComparison(comparison, 'json'));
  return { comparison, markdown, terminal: formatComparison(comparison, 'terminal'), charts };
}

/**
 * A Markdown table of values with 95% bootstrap intervals over the images, one column per entry;
 * a paired difference also says whether its interval excludes 0.
 */
export function intervalTable(classNames: string[], columns: [string, IouIntervals<Interval | PairedInterval>][], images: number): string {
  const f = (v: number) => (Number.isNaN(v) ? 'n/a' : (100 * v).toFixed(1));
  const cell = (i: Interval | PairedInterval) => `${f(i.estimate)} [${f(i.lower)}, ${f(i.upper)}]${'significant' in i ? (i.significant ? ' *' : '') : ''}`;
  const labels = [...classNames, 'mean (frequent)', 'mean (under-represented)', 'mIoU'];
  const pick = (x: IouIntervals<Interval | PairedInterval>) => [...x.perClass, x.groups.frequent, x.groups['under-represented'], x.mIoU];
  const rows = labels.map((label, j) => [label, ...columns.map(([, x]) => cell(pick(x)[j]))]);
  const paired = columns.some(([, x]) => 'significant' in x.mIoU);
  return `${renderTable(['class', ...columns.map(([name]) => `${name} [95% CI]`)], rows, 'markdown', ['left'])}\n\nPercentile bootstrap over the ${images} images (1000 resamples)${paired ? '; the delta is paired (the same resampled images for both runs), * where its interval excludes 0' : ''}.`;
}
