import type { DropClassModel, InferenceOptions } from '@dropclass/core';
import { type DatasetKind, type PairedDataset, type Rgb, checkDataset, computeClassFrequencies, defaultCheckCacheFile, openDataset } from '@dropclass/datasets';
import { classReport, formatReport } from '@dropclass/metrics';
import { type ModelSource, describeStep } from './checkpoint.js';
import { evaluateDataset } from './evaluate.js';

/** The model's classes and the dataset's do not match: which side has what. */
export class ClassMismatchError extends Error {}

/**
 * Checks the dataset's class names against the model's before anything is predicted: the count,
 * then the name of every id. `modelNames` is undefined for a model saved without class names (only
 * the count is checked then).
 */
export function checkClasses(modelPath: string, numClasses: number, modelNames: string[] | undefined, datasets: Record<string, PairedDataset>): void {
  for (const [split, ds] of Object.entries(datasets)) {
    const where = `the ${ds.kind} dataset at ${ds.root} (split ${split})`;
    if (ds.classNames.length !== numClasses) {
      throw new ClassMismatchError(
        `the model (${modelPath}) has ${numClasses} classes${modelNames ? ` (${modelNames.join(', ')})` : ''} but ${where} has ${ds.classNames.length} (${ds.classNames.join(', ')}); ` +
          'evaluate the model on the dataset it was trained for (--kind, --root)',
      );
    }
    if (!modelNames) continue;
    const differing = modelNames.map((name, id) => [id, name, ds.classNames[id]] as const).filter(([, a, b]) => a !== b);
    if (differing.length) {
      throw new ClassMismatchError(
        `the model (${modelPath}) and ${where} name their classes differently: ${differing.map(([id, a, b]) => `id ${id} is "${a}" in the model and "${b}" in the dataset`).join('; ')}. ` +
          'Its report would put the model\'s classes under the dataset\'s names: evaluate the model on the dataset it was trained for, or give the dataset the model\'s class names in the same order',
      );
    }
  }
}

export interface EvaluateReportOptions {
  modelPath: string;
  source: ModelSource;
  kind: DatasetKind;
  root: string;
  splits: string[];
  frequenciesSplit: string;
  format: 'terminal' | 'markdown' | 'json';
  mean: Rgb;
  std: Rgb;
  batchSize?: number;
  inference: InferenceOptions;
  rareThreshold?: number;
  skipBad?: boolean;
  log: (line: string) => void;
}

/**
 * `dropclass eval`: checks the classes against the model and the splits' files (every problem at
 * once) before predicting anything, then evaluates each split. Returns what to print: with `json`,
 * one document with the model's source and a report per split, keyed by split.
 */
export async function evaluateReport(model: DropClassModel, modelNames: string[] | undefined, options: EvaluateReportOptions): Promise<string> {
  const wanted = [...new Set([options.frequenciesSplit, ...options.splits])];
  // The classes first (opening a split reads no image), then every file of the splits.
  const opened: Record<string, PairedDataset> = {};
  for (const split of wanted) {
    const ds = await openDataset({ kind: options.kind, root: options.root, split, skipBad: true }).catch(() => undefined);
    if (ds) opened[split] = ds;
  }
  checkClasses(options.modelPath, model.numClasses, modelNames, opened);
  const checked = await checkDataset({
    kind: options.kind,
    root: options.root,
    splits: wanted,
    skipBad: options.skipBad,
    cacheFile: defaultCheckCacheFile(options.kind, options.root),
    skipHint: 'Or pass --skip-bad to leave the bad samples out (they are listed).',
  });
  for (const s of checked.skipped) options.log(`skipped (--skip-bad): ${s.split}: ${s.file ? `${s.file}: ` : ''}${s.message}`);
  const frequencies = (await computeClassFrequencies(checked.datasets[options.frequenciesSplit])).fraction;
  const modelInfo = { path: options.modelPath, step: options.source.step, iterations: options.source.iterations, partial: options.source.partial };
  const reports: Record<string, unknown> = {};
  const printed: string[] = [`model: ${options.modelPath}, ${describeStep(options.source)}`];
  for (const split of options.splits) {
    const ds = checked.datasets[split];
    const result = (await evaluateDataset(model, ds, { mean: options.mean, std: options.std, batchSize: options.batchSize, inference: options.inference })).result();
    const report = classReport(result, { classNames: ds.classNames, frequencies, rareThreshold: options.rareThreshold });
    if (options.format === 'json') reports[split] = JSON.parse(formatReport(report, 'json'));
    else printed.push(`${split}:\n${formatReport(report, options.format)}`);
  }
  if (options.format === 'json') return JSON.stringify({ format: 'dropclass-eval-report/1', model: modelInfo, splits: reports }, null, 2);
  return printed.join('\n\n');
}
