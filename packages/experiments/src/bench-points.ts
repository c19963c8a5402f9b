/**
 * The bench's points configurations (`deeplab-512`, `cityscapes`, `sweep-deeplab` in
 * `recipes/bench.json`): a backbone at each crop and batch, DropClass off and on, every point in a
 * fresh process on each side (the node worker `bench-worker.ts`, the PyTorch anchor
 * `python/torch_bench.py --spec`), so that each process's peak resident memory is that point's;
 * then the folded model's prediction of whole images and of large ones window by window, beside
 * PyTorch's eval-mode forward. Ratios are ours over PyTorch's, taken within the run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { type InferenceImage, type PointResult, type PointSpec, windowCount } from './bench-worker.js';
import { table } from './figures.js';
import { TORCH_HINT } from './python.js';

/** The node worker that measures one point (built: `dist/bench-worker.js`). */
export const BENCH_WORKER = fileURLToPath(new URL('../dist/bench-worker.js', import.meta.url));

/** A points configuration as `recipes/bench.json` gives it. */
export interface PointsRecipe {
  backbone: PointSpec['backbone'];
  classes: number;
  warmup: number;
  steps: number;
  /** Crops [height, width]. */
  crops: [number, number][];
  batches: number[];
  inference?: { repeats: number; images: InferenceImage[] };
}

export interface PointsOptions {
  config: string;
  description: string;
  recipe: PointsRecipe;
  backend?: BackendName;
  /** Threads on both sides (default: the machine's cores). */
  threads?: number;
  /** The PyTorch anchor; none: ours alone. */
  torchScript?: string;
  python: string;
}

type Side = PointResult | { error: string };
const failed = (side: Side | undefined): side is { error: string } => !!side && 'error' in side;

export interface TrainPoint {
  batch: number;
  height: number;
  width: number;
  mode: 'baseline' | 'dropclass';
  /** Pixels of one step's batch, in millions. */
  megapixels: number;
  ours: Side;
  torch?: Side;
  /** Ours over PyTorch's: median step time and peak resident memory. */
  ratio?: { time: number; memory: number };
}

export interface InferencePoint {
  name: string;
  height: number;
  width: number;
  windows: number;
  ours: { medianMs: number } | { error: string };
  torch?: { medianMs: number } | { error: string };
  ratio?: { time: number };
  /** Peak resident memory of each side's inference process, and its ratio. */
  maxRssMiB: { ours?: number; torch?: number; ratio?: number };
}

export interface PointsReport {
  kind: 'points';
  config: string;
  description: string;
  backbone: PointSpec['backbone'];
  classes: number;
  warmup: number;
  steps: number;
  machine: { cpu: string; cores: number; threads: number; backend?: string; native?: string; torch?: string; torchThreads?: number };
  train: TrainPoint[];
  inference?: InferencePoint[];
  /** What the PyTorch side could not do (torch missing...), once. */
  torchError?: string;
}

/** The CPU's model name as lscpu says it, else as node does. */
export function cpuName(): string {
  try {
    const line = execFileSync('lscpu', { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
      .split('\n')
      .find((l) => /^Model name:/.test(l));
    if (line) return line.replace(/^Model name:\s*/, '').trim();
  } catch {
    // no lscpu: node's name below
  }
  return os.cpus()[0]?.model.trim() ?? 'unknown CPU';
}


/** The progress lines of the worker and the anchor (forwarded to the log). */
const PROGRESS = /^ {2}(tfjs|PyTorch) /;

/** Runs a command, forwards its stderr lines to `log`, and parses the last line of its stdout as JSON. */
function measure(command: string, args: string[], log: (line: string) => void): Promise<Side & { exitCode?: number }> {
  return new Promise((done) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (PROGRESS.test(line)) log(line);
    });
    child.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code === 'ENOENT' ? `${command} does not exist` : error.message }));
    child.on('close', (code) => {
      if (code === 0) {
        try {
          return done(JSON.parse(stdout.trim().split('\n').pop()!) as PointResult);
        } catch {
          // falls through to the error below
        }
      }
      const said = stderr.trim().split('\n').filter((l) => l && !PROGRESS.test(l)).pop() ?? `exit code ${code}`;
      done({ error: said, exitCode: code ?? undefined });
    });
  });
}

/** Every point of the configuration, each side in its own process, and the report. */
export async function runPointsBench(options: PointsOptions, log: (line: string) => void = () => {}): Promise<PointsReport> {
  const { recipe } = options;
  if (!existsSync(BENCH_WORKER)) throw new Error(`the bench worker ${BENCH_WORKER} is not built: run npx nx run-many -t build`);
  const threads = options.threads ?? os.availableParallelism();
  const common = { backbone: recipe.backbone, classes: recipe.classes, threads, backend: options.backend };
  let torchError = options.torchScript && !existsSync(options.torchScript) ? `PyTorch anchor script not found at ${options.torchScript}` : undefined;
  const ours = (spec: PointSpec) => measure(process.execPath, [BENCH_WORKER, JSON.stringify(spec)], log);
  const torch = async (spec: PointSpec): Promise<Side | undefined> => {
    if (!options.torchScript) return undefined;
    if (torchError) return { error: torchError };
    const side = await measure(options.python, [options.torchScript, '--spec', JSON.stringify({ ...spec, backend: undefined })], log);
    // Without torch (exit 3, saying what to install) or python, the other points would fail alike.
    if (failed(side) && side.exitCode === 3) torchError = `${side.error} (or pass --no-torch)`;
    if (failed(side) && side.exitCode === undefined) torchError = `the python interpreter ${side.error}; ${TORCH_HINT}`;
    return side;
  };
  const layout = String(recipe.backbone.options.layout ?? recipe.backbone.kind);
  const points = recipe.crops.flatMap(([height, width]) => recipe.batches.flatMap((batch) => (['baseline', 'dropclass'] as const).map((mode) => ({ height, width, batch, mode }))));
  const train: TrainPoint[] = [];
  for (const [i, p] of points.entries()) {
    const spec: PointSpec = { ...common, task: 'train', dropclass: p.mode === 'dropclass', batch: p.batch, height: p.height, width: p.width, warmup: recipe.warmup, steps: recipe.steps };
    const label = `[${i + 1}/${points.length}] ${recipe.backbone.kind}-${layout} batch ${p.batch} ${p.height}x${p.width} ${p.mode}`;
    log(`${label}: tfjs`);
    const mine = await ours(spec);
    if (options.torchScript) log(`${label}: PyTorch`);
    const theirs = await torch(spec);
    const point: TrainPoint = { ...p, megapixels: (p.batch * p.height * p.width) / 1e6, ours: mine, ...(theirs ? { torch: theirs } : {}) };
    if (!failed(mine) && theirs && !failed(theirs)) point.ratio = { time: mine.medianMs! / theirs.medianMs!, memory: mine.maxRssMiB / theirs.maxRssMiB };
    train.push(point);
  }
  let inference: InferencePoint[] | undefined;
  let inferenceSides: [Side, Side | undefined] | undefined;
  if (recipe.inference) {
    const spec: PointSpec = { ...common, task: 'infer', dropclass: true, repeats: recipe.inference.repeats, images: recipe.inference.images };
    log(`inference (folded DropClass model): tfjs`);
    const mine = await ours(spec);
    if (options.torchScript) log('inference (eval-mode forward): PyTorch');
    const theirs = await torch(spec);
    inferenceSides = [mine, theirs];
    inference = recipe.inference.images.map((image, i) => {
      const a = failed(mine) ? mine : mine.images![i];
      const b = !theirs ? undefined : failed(theirs) ? theirs : theirs.images![i];
      const point: InferencePoint = {
        name: image.name,
        height: image.height,
        width: image.width,
        windows: !('error' in a) ? a.windows : b && !('error' in b) ? b.windows : windowCount(image),
        ours: 'error' in a ? a : { medianMs: a.medianMs },
        ...(b ? { torch: 'error' in b ? b : { medianMs: b.medianMs } } : {}),
        maxRssMiB: {
          ...(failed(mine) ? {} : { ours: mine.maxRssMiB }),
          ...(theirs && !failed(theirs) ? { torch: theirs.maxRssMiB } : {}),
        },
      };
      if (!('error' in a) && b && !('error' in b)) point.ratio = { time: a.medianMs / b.medianMs };
      if (point.maxRssMiB.ours && point.maxRssMiB.torch) point.maxRssMiB.ratio = point.maxRssMiB.ours / point.maxRssMiB.torch;
      return point;
    });
  }
  const sides = [...train.flatMap((p) => [p.ours, p.torch]), ...(inferenceSides ?? [])];
  const first = (pick: (s: PointResult) => boolean) => sides.find((s): s is PointResult => !!s && !failed(s) && pick(s));
  const here = first((s) => s.torch === undefined);
  const there = first((s) => s.torch !== undefined);
  return {
    kind: 'points',
    config: options.config,
    description: options.description,
    backbone: recipe.backbone,
    classes: recipe.classes,
    warmup: recipe.warmup,
    steps: recipe.steps,
    machine: { cpu: cpuName(), cores: os.availableParallelism(), threads, backend: here?.backend, native: here?.native, torch: there?.torch, torchThreads: there?.threads },
    train,
    ...(inference ? { inference } : {}),
    ...(torchError ? { torchError } : {}),
  };
}

const fixed = (v: number | undefined, digits = 1) => (v === undefined ? '-' : v.toFixed(digits));


/** The report as text: the machine, a row per training point, a row per predicted image. */
export function formatPointsBench(report: PointsReport): string {
  const m = report.machine;
  const o = report.backbone.options;
  const network = report.backbone.kind === 'deeplabv3' ? `DeepLabV3-${String(o.layout ?? 'resnet18')} (output stride ${String(o.outputStride ?? 16)}${o.width && o.width !== 1 ? `, width ${String(o.width)}` : ''})` : `${report.backbone.kind} ${JSON.stringify(o)}`;
  const lines = [
    `configuration ${report.config}: ${network}, ${report.classes} classes; median of ${report.steps} steps after ${report.warmup} warm-up; each point in its own process on each side`,
    `machine: ${m.cpu}, ${m.cores} cores; ours: ${m.backend ?? '?'} ${m.threads} threads${m.native ? `, native kernels ${m.native}` : ''}; PyTorch ${m.torch ?? '-'}${m.torchThreads ? `, ${m.torchThreads} threads` : ''}`,
  ];
  const err = (side: Side | undefined) => (failed(side) ? 'error' : undefined);
  const rows = [['batch', 'crop', 'mode', 'ms/step', 'img/s', 'PyTorch ms/step', 'PyTorch img/s', 'time ratio', 'peak MiB', 'PyTorch peak MiB', 'memory ratio']];
  for (const p of report.train) {
    const a = failed(p.ours) ? undefined : p.ours;
    const b = !p.torch || failed(p.torch) ? undefined : p.torch;
    rows.push([
      String(p.batch),
      `${p.height}x${p.width}`,
      p.mode,
      err(p.ours) ?? fixed(a!.medianMs),
      a ? fixed((1000 * p.batch) / a.medianMs!, 2) : '-',
      err(p.torch) ?? fixed(b?.medianMs),
      b ? fixed((1000 * p.batch) / b.medianMs!, 2) : '-',
      p.ratio ? `${p.ratio.time.toFixed(2)}x` : '-',
      fixed(a?.maxRssMiB, 0),
      fixed(b?.maxRssMiB, 0),
      p.ratio ? `${p.ratio.memory.toFixed(2)}x` : '-',
    ]);
  }
  lines.push('', 'training step (forward, objective, backward, SGD step); ratios are ours / PyTorch', ...table(rows, 3));
  if (report.inference) {
    const inf = [['image', 'windows', 'ms', 'PyTorch ms', 'time ratio']];
    for (const p of report.inference) {
      inf.push([p.name, String(p.windows), 'error' in p.ours ? 'error' : fixed(p.ours.medianMs), !p.torch ? '-' : 'error' in p.torch ? 'error' : fixed(p.torch.medianMs), p.ratio ? `${p.ratio.time.toFixed(2)}x` : '-']);
    }
    const rss = report.inference[0]?.maxRssMiB;
    lines.push('', 'inference of one image (folded DropClass model here, eval-mode forward in PyTorch; logits at the image size, windows averaged)', ...table(inf, 1));
    if (rss) lines.push(`inference peak memory: ${fixed(rss.ours, 0)} MiB, PyTorch ${fixed(rss.torch, 0)} MiB${rss.ratio ? ` (${rss.ratio.toFixed(2)}x)` : ''}`);
  }
  const distinct = (sides: (Side | InferencePoint['ours'] | InferencePoint['torch'])[]) => [...new Set(sides.filter((x): x is { error: string } => !!x && 'error' in x).map((e) => e.error))];
  const oursErrors = distinct([...report.train.map((p) => p.ours), ...(report.inference ?? []).map((p) => p.ours)]);
  const torchErrors = report.torchError ? [report.torchError] : distinct([...report.train.map((p) => p.torch), ...(report.inference ?? []).map((p) => p.torch)]);
  if (oursErrors.length) lines.push(`ours failed: ${oursErrors.join('; ')}`);
  if (torchErrors.length) lines.push(`PyTorch anchor: ${torchErrors.join('; ')}`);
  return lines.join('\n');
}

/** Vega-Lite spec: ms per megapixel and peak memory against the pixels of a step's batch, both frameworks, DropClass off and on. */
export function pointsChartSpec(report: PointsReport): object {
  const values = report.train.flatMap((p) =>
    (
      [
        ['tfjs', p.ours],
        ['PyTorch', p.torch],
      ] as const
    )
      .filter(([, side]) => side && !failed(side))
      .map(([framework, side]) => {
        const s = side as PointResult;
        return { framework, mode: p.mode, series: `${framework}, ${p.mode}`, megapixels: p.megapixels, msPerMegapixel: s.medianMs! / p.megapixels, peakMiB: s.maxRssMiB, crop: `${p.batch}x${p.height}x${p.width}` };
      }),
  );
  const encoding = (field: string, title: string) => ({
    x: { field: 'megapixels', type: 'quantitative', scale: { type: 'log' }, title: 'pixels per step (megapixels, batch x crop)' },
    y: { field, type: 'quantitative', title },
    color: { field: 'framework', type: 'nominal', title: null, scale: { range: ['#d9480f', '#1c7ed6'] } },
    strokeDash: { field: 'mode', type: 'nominal', title: null },
    shape: { field: 'mode', type: 'nominal', title: null },
    tooltip: [{ field: 'crop' }, { field: field }],
  });
  const m = report.machine;
  return {
    title: { text: `dropclass bench --config ${report.config}`, subtitle: `${m.cpu}, ${m.threads} threads; PyTorch ${m.torch ?? '-'}` },
    data: { values },
    hconcat: [
      { width: 320, height: 220, mark: { type: 'line', point: true }, encoding: encoding('msPerMegapixel', 'training step, ms per megapixel') },
      { width: 320, height: 220, mark: { type: 'line', point: true }, encoding: encoding('peakMiB', 'peak resident memory (MiB)') },
    ],
  };
}

/** Draws `pointsChartSpec` to a PNG file with the charting of @dropclass/metrics. */
export async function writePointsChart(report: PointsReport, file: string): Promise<void> {
  const { renderChart } = await import('@dropclass/metrics');
  await writeFile(file, await renderChart(pointsChartSpec(report) as Parameters<typeof renderChart>[0]));
}
