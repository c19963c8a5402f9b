import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, relative } from 'node:path';
import type { SyntheticStats } from '@dropclass/datasets';
import {
  type ClassGroup,
  ConfusionMatrix,
  type Interval,
  type IouIntervals,
  type IntervalPoint,
  type PairedInterval,
  PerImageConfusion,
  bootstrapIoU,
  groupOf,
  nanMean,
  pairedBootstrapIoU,
  renderIntervals,
  renderTable,
} from '@dropclass/metrics';
import { nativeKernelsState } from '@dropclass/tfjs-wasm-train';
import { getBackend } from '@tensorflow/tfjs-core';
import type { DependencyDiagnostic, EvalFile } from '@dropclass/train';

/** One finished run of the experiment, as the results page reads it. */
export interface ExperimentRun {
  seed: number;
  /** The mode's name in the recipe (`baseline`, `dropclass`, `weighted-ce`, ...). */
  mode: string;
  dir: string;
  evalFile: EvalFile;
  dependency: DependencyDiagnostic;
  /** Finished by an earlier invocation and reused. */
  reused: boolean;
}

/** A mode compared on the page: its name, label and what it is. */
export interface PageMode {
  name: string;
  label: string;
  description: string;
}

/** How the runs were trained: the regime, and for fine-tuning the pretraining runs they start from. */
export interface PageRegime {
  name: string;
  description: string;
  pretraining?: {
    iterations: number;
    stats?: SyntheticStats;
    runs: { seed: number; dir: string; evalFile: EvalFile }[];
    /** The parts of the pretrained model each run loads. */
    parts: string[];
  };
}

export interface SplitResults {
  /** Per mode, its IoU with intervals. */
  modes: Record<string, IouIntervals>;
  /** Per compared mode (every mode but the reference), its difference from the reference. */
  delta: Record<string, IouIntervals<PairedInterval>>;
}

export interface ResultsPage {
  markdown: string;
  terminal: string;
  /** Chart files, relative to the output folder. */
  charts: string[];
  splits: Record<string, SplitResults>;
  classNames: string[];
  groups: ClassGroup[];
}

/** The figure the results page asks of the baseline: every class learned at least partly (IoU above this on val). */
export const LEARNED_IOU = 0.2;

const pct = (v: number) => (Number.isNaN(v) ? 'n/a' : (100 * v).toFixed(1));
const sgn = (v: number) => (Number.isNaN(v) ? 'n/a' : `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`);
const withCi = (i: Interval, f = pct) => `${f(i.estimate)} [${f(i.lower)}, ${f(i.upper)}]`;
const sd = (i: Interval) => (Number.isNaN(i.std) ? '–' : (100 * i.std).toFixed(1));
/**
 * A difference smaller than the tables' precision (0.1 IoU points) is negligible, even when its interval
 * excludes 0 (a class both models predict nowhere differs by a few pixels, consistently).
 */
const NEGLIGIBLE = 0.0005;
const beyondNoise = (d: PairedInterval) => d.significant && Math.abs(d.estimate) >= NEGLIGIBLE;
export const verdict = (d: PairedInterval) =>
  Number.isNaN(d.lower) ? 'n/a' : beyondNoise(d) ? (d.estimate > 0 ? 'yes, higher' : 'yes, lower') : d.significant ? 'no (< 0.1)' : 'no';

/** The backend, and on wasm whether the native kernels ran (they round differently, so runs differ). */
function describeBackend(): string {
  const backend = getBackend() ?? '?';
  const native = backend === 'wasm' ? nativeKernelsState() : undefined;
  if (!native) return backend;
  return native.active ? `${backend} with native kernels (${native.isa})` : `${backend} without native kernels (${native.reason})`;
}

/**
 * The code that ran: `DROPCLASS_COMMIT` when set (a copy of the checkout without its git folder),
 * else the checkout's commit, marked when files differ from it.
 */
function describeCode(): string {
  if (process.env.DROPCLASS_COMMIT) return `commit ${process.env.DROPCLASS_COMMIT}`;
  try {
    const git = (args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git(['rev-parse', '--short', 'HEAD']);
    return `commit ${commit}${git(['status', '--porcelain', '--untracked-files=no']) ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'not a git checkout (DROPCLASS_COMMIT names the code)';
  }
}

/**
 * The classes some seed's baseline did not learn (IoU at most {@link LEARNED_IOU}, or absent), with
 * those seeds: a mean over seeds can pass the bar while one seed never learned the class.
 */
export function unlearnedClasses(classNames: string[], seeds: number[], perSeedIou: number[][]): { name: string; seeds: number[] }[] {
  return classNames
    .map((name, c) => ({ name, seeds: seeds.filter((_, i) => !(perSeedIou[i][c] > LEARNED_IOU)) }))
    .filter((u) => u.seeds.length > 0);
}

function sampleStd(xs: number[]): number {
  if (xs.length < 2) return Number.NaN;
  const m = nanMean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * The results page of an experiment comparing modes (one or more seeds; the first mode is the
 * reference the others are compared with): setup, regime, machine; per split a per-class table
 * of every mode's IoU with 95% bootstrap intervals, and per compared mode the paired interval of
 * its difference from the reference; group means, charts, the dependency diagnostic, what the
 * numbers can and cannot show, and a "Reading" section left for a person. Writes `report.md`,
 * `results.json` and the charts into `out`.
 */
export async function writeResultsPage(options: {
  runs: ExperimentRun[];
  /** The modes in order, the reference first. */
  modes: PageMode[];
  regime: PageRegime;
  out: string;
  stats?: SyntheticStats;
  iterations: number;
  /** The backbone in words, e.g. "U-Net (base 8, depth 3, 64 feature channels)". */
  backbone: string;
  command: string;
  wallMs: number;
  jobs: number;
  /** Threads of each run's process. */
  threads: number;
  resamples: number;
}): Promise<ResultsPage> {
  const { runs, out, modes, regime } = options;
  const [reference, ...compared] = modes;
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  const of = (mode: string) =>
    seeds.map((s) => {
      const run = runs.find((r) => r.seed === s && r.mode === mode);
      if (!run) throw new Error(`no run of mode ${mode} for seed ${s}: every mode needs a run of every seed`);
      return run;
    });
  const byMode = new Map(modes.map((m) => [m.name, of(m.name)]));
  const first = byMode.get(reference.name)![0].evalFile;
  const classNames = first.classNames;
  const groups = first.frequencies.map((f) => groupOf(f, first.rareThreshold));
  const splitNames = Object.keys(first.splits);
  const splits: Record<string, SplitResults> = {};
  const charts: string[] = [];
  const sections: string[] = [];
  const terminal: string[] = [];
  const labels = [...classNames, 'mean (frequent)', 'mean (under-represented)', 'mIoU'];
  const pick = (x: IouIntervals | IouIntervals<PairedInterval>) => [...x.perClass, x.groups.frequent, x.groups['under-represented'], x.mIoU];
  const points = (series: string, x: IouIntervals | IouIntervals<PairedInterval>): IntervalPoint[] => pick(x).map((i, j) => ({ label: labels[j], series, estimate: i.estimate, lower: i.lower, upper: i.upper }));
  const model = (x: Interval) => (seeds.length > 1 ? `${withCi(x)} sd ${sd(x)}` : withCi(x));
  const deltaName = (m: PageMode) => `${m.label} - ${reference.label}`;
  for (const [index, split] of splitNames.entries()) {
    const perImage = (list: ExperimentRun[]) =>
      list.map((r) => {
        const json = r.evalFile.perImage?.[split];
        if (!json) throw new Error(`${r.dir}/eval.json has no per-image matrices for ${split} (written by an older version); run the job again with --fresh`);
        return PerImageConfusion.fromJSON(json);
      });
    const matrices = new Map(modes.map((m) => [m.name, perImage(byMode.get(m.name)!)]));
    const bootstrap = { groups, resamples: options.resamples, seed: index };
    const result: SplitResults = {
      modes: Object.fromEntries(modes.map((m) => [m.name, bootstrapIoU(matrices.get(m.name)!, bootstrap)])),
      delta: Object.fromEntries(compared.map((m) => [m.name, pairedBootstrapIoU(matrices.get(reference.name)!, matrices.get(m.name)!, bootstrap)])),
    };
    splits[split] = result;
    const instances = options.stats?.splits[split as keyof SyntheticStats['splits']]?.instances ?? {};
    const iouRows = labels.map((label, j) => [
      label,
      j < classNames.length ? groups[j] : '',
      j < classNames.length ? `${(100 * first.frequencies[j]).toFixed(2)}%` : '',
      j < classNames.length && instances[label] !== undefined ? String(instances[label]) : '',
      ...modes.map((m) => model(pick(result.modes[m.name])[j])),
    ]);
    const iouTable = renderTable(['class', 'group', 'train pixels', `${split} instances`, ...modes.map((m) => `${m.label} IoU [95% CI]`)], iouRows, 'markdown', ['left', 'left']);
    const deltaTables = compared.map((m) => {
      const rows = labels.map((label, j) => {
        const d = pick(result.delta[m.name])[j] as PairedInterval;
        return [label, withCi(d, sgn), sd(d), verdict(d)];
      });
      return `### ${deltaName(m)} on ${split}\n\n${renderTable(['class', 'delta [95% CI]', 'delta sd over seeds', 'larger than its uncertainty'], rows, 'markdown', ['left'])}`;
    });
    const iouChart = `iou-ci-${split}.png`;
    const deltaChart = `delta-ci-${split}.png`;
    await writeFile(join(out, iouChart), await renderIntervals(modes.flatMap((m) => points(m.label, result.modes[m.name])), { title: `IoU on ${split} with 95% intervals`, yTitle: 'IoU' }));
    await writeFile(
      join(out, deltaChart),
      await renderIntervals(compared.flatMap((m) => points(deltaName(m), result.delta[m.name])), { title: `Differences from ${reference.label} on ${split}, paired 95% intervals`, yTitle: 'IoU difference', zeroLine: true }),
    );
    charts.push(iouChart, deltaChart);
    sections.push(`## ${split}\n\n${iouTable}\n\n${deltaTables.join('\n\n')}\n\n![IoU with intervals](${iouChart})\n\n![differences with intervals](${deltaChart})`);
    const short = labels.map((label, j) => [label, ...modes.map((m) => withCi(pick(result.modes[m.name])[j])), ...compared.map((m) => `${withCi(pick(result.delta[m.name])[j], sgn)} ${beyondNoise(pick(result.delta[m.name])[j] as PairedInterval) ? '*' : ''}`.trim())]);
    terminal.push(`${split}:\n${renderTable(['class', ...modes.map((m) => m.label), ...compared.map((m) => deltaName(m))], short, 'terminal', ['left'])}`);
  }

  // Class dependency: the same intervention in every model, mean and spread over seeds.
  const dep = (list: ExperimentRun[]) => {
    const off = list.map((r) => r.dependency.meanOffDiagonalDrop);
    const self = list.map((r) => nanMean(r.dependency.selfDrop));
    return { off: nanMean(off), offSd: sampleStd(off), self: nanMean(self), selfSd: sampleStd(self) };
  };
  const dependency = Object.fromEntries(modes.map((m) => [m.name, dep(byMode.get(m.name)!)]));
  const spread = (v: number) => (Number.isNaN(v) ? '' : ` ± ${(100 * v).toFixed(2)}`);
  const depRows = modes.map((m) => [m.label, `${(100 * dependency[m.name].off).toFixed(2)}${spread(dependency[m.name].offSd)}`, `${(100 * dependency[m.name].self).toFixed(2)}${spread(dependency[m.name].selfSd)}`]);
  const heatmaps = runs.map((r) => `[${r.mode}, seed ${r.seed}](${relativeTo(out, join(r.dir, 'dependency.png'))})`).join(', ');
  for (const r of runs) charts.push(relativeTo(out, join(r.dir, 'dependency.png')));
  const dependencySection = [
    '## Class dependency (val)',
    `Intervention, the same in every model: ${byMode.get(reference.name)![0].dependency.intervention}. An off-diagonal entry is the IoU drop of another class; the diagonal (own-class drop) shows how strongly the intervention hits the class itself. Points; mean${seeds.length > 1 ? ' ± sd over seeds' : ''}.`,
    renderTable(['model', 'mean off-diagonal IoU drop', 'mean own-class IoU drop'], depRows, 'markdown', ['left']),
    `Heatmaps: ${heatmaps}.`,
  ].join('\n\n');

  // What the numbers can and cannot show, from the numbers themselves.
  const caveats: string[] = [];
  const valName = splits.val ? 'val' : splitNames[0];
  const perSeedIou = byMode.get(reference.name)!.map((r) => ConfusionMatrix.fromJSON(r.evalFile.splits[valName]).result().iou);
  const unlearned = unlearnedClasses(classNames, seeds, perSeedIou);
  caveats.push(
    unlearned.length
      ? `Not learned by the ${reference.label} at this budget in every seed (IoU at most ${100 * LEARNED_IOU} on ${valName}): ${unlearned.map((u) => (seeds.length > 1 ? `${u.name} (seed ${u.seeds.join(', ')})` : u.name)).join(', ')}. A difference on these classes says little about the other modes; train longer (\`--iterations\`).`
      : `The ${reference.label} learns every class at least partly in every seed (IoU above ${100 * LEARNED_IOU} on ${valName} for each class).`,
  );
  for (const m of compared) {
    for (const split of splitNames) {
      const d = splits[split].delta[m.name];
      const named = [...classNames.map((n, c) => [n, d.perClass[c]] as const), ['the under-represented mean', d.groups['under-represented']] as const, ['the frequent mean', d.groups.frequent] as const, ['mIoU', d.mIoU] as const];
      const beyond = named.filter(([, x]) => beyondNoise(x)).map(([n, x]) => `${n} (${sgn(x.estimate)})`);
      const within = named.filter(([, x]) => !x.significant).map(([n]) => n);
      const negligible = named.filter(([, x]) => x.significant && !beyondNoise(x)).map(([n]) => n);
      caveats.push(
        `${deltaName(m)}, ${split}: ${beyond.length ? `differences larger than their 95% interval: ${beyond.join(', ')}` : 'no difference is larger than its 95% interval'}; ${within.length ? `within the noise (interval covers 0): ${within.join(', ')}` : 'none is within the noise'}${negligible.length ? `; smaller than the tables' precision (under 0.1 points): ${negligible.join(', ')}` : ''}.`,
      );
    }
  }
  caveats.push(
    seeds.length === 1
      ? 'One seed: the intervals cover the choice of evaluation images only, not the training noise (another seed can move a class by more). The powered comparison is `dropclass main --seeds 6 --iterations N --jobs J --results docs/results.md`.'
      : `${seeds.length} seeds: the intervals resample images and seeds; with this few seeds the seed resampling understates the training noise, so read each delta beside its sd over seeds.`,
  );
  caveats.push('The dependency numbers are single evaluations per run, without intervals.');

  const cpus = os.cpus();
  const reused = runs.filter((r) => r.reused).length;
  const describeData = (stats: SyntheticStats) =>
    `generator version ${stats.options?.version ?? '?'}, seed ${stats.seed}, ${stats.size}x${stats.size}: ${Object.entries(stats.splits)
      .map(([s, v]) => `${s} ${v!.images} images (${Object.entries(v!.instances).map(([o, n]) => `${o} ${n}`).join(', ')} instances)`)
      .join('; ')}`;
  const stats = options.stats;
  const pre = regime.pretraining;
  const pretrainLine = pre
    ? (() => {
        const val = pre.runs.map((r) => ConfusionMatrix.fromJSON(r.evalFile.splits.val ?? Object.values(r.evalFile.splits)[0]).result());
        const lowest = val.map((v) => Math.min(...v.iou.filter((x) => !Number.isNaN(x))));
        return `- Pretraining: per seed one ${pre.iterations}-step baseline run on the balanced pretraining set${pre.stats ? ` (${describeData(pre.stats)})` : ''}; its mIoU on the pretraining set's val ${val.map((v) => pct(v.mIoU)).join(', ')} by seed (lowest class IoU ${lowest.map(pct).join(', ')}). Each run below loads its ${pre.parts.join(' and ')} and trains from there.`;
      })()
    : '';
  const title = modes.map((m) => m.label).join(' vs ');
  const markdown = [
    `# ${title} on the synthetic long-tailed, context-biased benchmark: ${regime.name} regime`,
    [
      `- Command: \`${options.command}\``,
      `- Machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores; backend ${describeBackend()}; ${options.jobs === 1 ? `runs one after the other, each in a process of its own with ${options.threads} thread(s)` : `${options.jobs} runs at a time, ${options.threads} thread(s) each`}`,
      `- Date: ${new Date().toISOString()}`,
      `- Code: ${describeCode()}`,
      `- Wall time of the command: ${(options.wallMs / 60000).toFixed(1)} min${reused ? ` (${reused} of ${runs.length} runs were finished by an earlier invocation and reused)` : ''}`,
      `- Regime: ${regime.name}, ${regime.description}.`,
      pretrainLine,
      `- Setup: ${options.backbone}, ${classNames.length} classes, ${options.iterations} steps per run, seeds ${seeds.join(', ')}; every mode with the same seeds, steps and recipe.`,
      `- Modes: ${modes.map((m) => `${m.label} (\`${m.name}\`): ${m.description}`).join('; ')}. Differences are taken from ${reference.label}.`,
      stats ? `- Data: the synthetic benchmark (${describeData(stats)}).` : '',
    ]
      .filter(Boolean)
      .join('\n'),
    '## How to read the tables',
    `IoU per class over the whole split, in percent, the mean over seeds${seeds.length > 1 ? ' (with its sd over seeds)' : ''}. 95% intervals: percentile bootstrap (${options.resamples} resamples) over the evaluation images${seeds.length > 1 ? ' and the seeds' : ''}, the same resampled images for every run. A difference is a mode's IoU minus ${reference.label}'s with a paired bootstrap (the same resampled images${seeds.length > 1 ? ' and seeds' : ''} for both); it is "larger than its uncertainty" when its interval excludes 0. Classes under ${(100 * first.rareThreshold).toFixed(1)}% of the training pixels are under-represented. \`val\` keeps the training context bias; \`val-shifted\` puts the objects on other contexts.`,
    ...sections,
    dependencySection,
    `## What these runs can and cannot show\n\n${caveats.map((c) => `- ${c}`).join('\n')}`,
    `Per-seed tables and bar charts: ${seeds.flatMap((s) => compared.map((m) => `[seed ${s}, ${m.label}](seed-${s}/vs-${m.name}/comparison.md)`)).join(', ')}.`,
    '## Reading\n\nTODO(reader): the reading of these results, written by whoever ran the command: what the tables and charts show, and what they do not.',
  ].join('\n\n');
  await writeFile(join(out, 'report.md'), `${markdown}\n`);
  const json = { command: options.command, regime: regime.name, modes: modes.map((m) => m.name), reference: reference.name, seeds, iterations: options.iterations, classNames, groups, splits, dependency };
  await writeFile(join(out, 'results.json'), JSON.stringify(json, (_, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2));
  return {
    markdown: `${markdown}\n`,
    terminal: [
      `Differences from ${reference.label} (IoU %, 95% intervals; * beyond the noise; ${seeds.length} seed(s), ${options.iterations} steps, ${regime.name} regime):`,
      ...terminal,
      `class dependency (mean off-diagonal IoU drop, points): ${modes.map((m) => `${m.label} ${(100 * dependency[m.name].off).toFixed(2)}`).join(', ')}`,
      `What this run can and cannot show:\n${caveats.map((c) => `- ${c}`).join('\n')}`,
    ].join('\n\n'),
    charts,
    splits,
    classNames,
    groups,
  };
}

function relativeTo(root: string, file: string): string {
  return relative(root, file).split('\\').join('/');
}
