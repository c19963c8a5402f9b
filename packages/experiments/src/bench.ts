import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { type SegmentationBackbone, DropClassModel, createBackbone } from '@dropclass/core';
import { type BackendName, type NativeKernelsState, initBackend, nativeKernelsState, wasmThreadCount } from '@dropclass/tfjs-wasm-train';
// the backbones timed, built by kind from the registry their packages fill when imported
import '@dropclass/backbone-deeplab';
import '@dropclass/backbone-unet';
import { median, percentile, table } from './figures.js';
import { type StepProfile, formatProfile, profileKernels } from './profile.js';
import { TORCH_HINT } from './python.js';

/** The PyTorch anchor shipped with this package (`python/torch_bench.py`, on the `dropclass_twin` package beside it), the bench's default. */
export const BUNDLED_TORCH_ANCHOR = fileURLToPath(new URL('../python/torch_bench.py', import.meta.url));

/** How to get the anchor running, in every message about it. */

export interface BenchOptions {
  backend?: BackendName;
  /** Timed steps per configuration (the median is reported). */
  steps: number;
  warmup: number;
  batch: number;
  size: number;
  classes: number;
  base: number;
  depth: number;
  /** Width of the U-Net's final feature map (one more 3x3 conv + BN + ReLU), as the main job's; none when absent. */
  featureChannels?: number;
  /** Also time DeepLabV3-ResNet18 at batch x deeplabSize x deeplabSize. */
  deeplab: boolean;
  deeplabSize: number;
  /** Path of the PyTorch anchor script (run with python3 when torch is importable). */
  torchScript?: string;
  python: string;
  /** Threads for the wasm backend (default: the machine's cores). */
  threads?: number;
  /** Also time every kernel of a few extra steps. */
  profile?: boolean;
}

export interface TrainTiming {
  medianMs: number;
  imagesPerSecond: number;
  tensorsBefore: number;
  tensorsAfter: number;
  /** Per-kernel times of one step (with `profile`). */
  profile?: StepProfile;
}

/** Percentiles of the DropClass step's time over the baseline step's, pair by pair (steps timed one after the other). */
export interface PairedOverhead {
  medianPercent: number;
  /** The middle half of the pairs: 25th and 75th percentiles. */
  lowPercent: number;
  highPercent: number;
}

export interface BackboneBench {
  name: string;
  config: { batch: number; size: number; classes: number };
  trainableParams: { baseline: number; dropclass: number };
  baseline: TrainTiming;
  dropclass: TrainTiming;
  /** From the two medians. */
  dropclassOverheadPercent: number;
  /** From each DropClass step against the baseline step just before it: less moved by a machine whose speed drifts. */
  dropclassOverheadPaired: PairedOverhead;
  inference: { baselineMs: number; foldedMs: number; foldedOverheadPercent: number };
}

export interface BenchReport {
  backend: string;
  /** wasm's own threads (1 where the native kernels run: theirs are `native.threads`); 0 on other backends. */
  threads: number;
  /** On wasm: whether the native convolutions and products ran, or why not. */
  native?: NativeKernelsState;
  /** The configuration's name: `default` (U-Net 4x128x128) or `main-job`. */
  config: string;
  unet: BackboneBench;
  deeplab?: BackboneBench;
  torch?: { baselineMs: number; dropclassMs: number; params: number; ratioDropclass: number; ratioBaseline: number } | { error: string };
  peakRssMiB: number;
}


/** A model of each mode on the same data, and one training step of it. */
function trainer(backbone: () => SegmentationBackbone, dropclass: boolean, options: BenchOptions, size: number) {
  const model = DropClassModel.create(backbone(), { numClasses: options.classes, dropclass, seed: 0 });
  const images = tf.randomNormal([options.batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.randomUniform([options.batch, size, size], 0, options.classes, 'int32', 2) as tf.Tensor3D;
  const step = (i: number) => model.trainStep(images, labels, { progress: 0.5, learningRate: 0.01, droppedClass: dropclass ? i % options.classes : undefined });
  return { model, images, labels, step };
}

/**
 * Milliseconds of each run of each task, the tasks run in turn `repeats` times, so that a machine
 * that speeds up or slows down during the run moves all medians alike and their ratios stay fair.
 */
function timeAlternately(tasks: ((i: number) => void)[], repeats: number): number[][] {
  const times = tasks.map(() => [] as number[]);
  for (let i = 0; i < repeats; i++) {
    tasks.forEach((task, t) => {
      const t0 = performance.now();
      task(i);
      times[t].push(performance.now() - t0);
    });
  }
  return times;
}

/** The baseline and the DropClass training step, timed alternately, and the DropClass overhead pair by pair. */
function timeTraining(runs: { step: (i: number) => void }[], options: BenchOptions): { timings: TrainTiming[]; paired: PairedOverhead } {
  for (let i = 0; i < options.warmup; i++) for (const run of runs) run.step(i);
  const tensorsBefore = tf.memory().numTensors;
  const times = timeAlternately(runs.map((run) => run.step), options.steps);
  const tensorsAfter = tf.memory().numTensors;
  const timings = runs.map((run, r) => {
    const medianMs = median(times[r]);
    const profile = options.profile ? profileKernels(() => run.step(0), 3) : undefined;
    return { medianMs, imagesPerSecond: (1000 * options.batch) / medianMs, tensorsBefore, tensorsAfter, profile };
  });
  const overheads = times[1].map((ms, i) => (100 * (ms - times[0][i])) / times[0][i]);
  return { timings, paired: { medianPercent: median(overheads), lowPercent: percentile(overheads, 0.25), highPercent: percentile(overheads, 0.75) } };
}

/** Predictions, timed alternately up to their values being read. */
function timeInference(predictors: (() => tf.Tensor)[], repeats: number): number[] {
  for (const predict of predictors) tf.dispose(predict());
  return timeAlternately(
    predictors.map((predict) => () => {
      const out = predict();
      out.dataSync();
      out.dispose();
    }),
    repeats,
  ).map(median);
}

function benchBackbone(name: string, backbone: () => SegmentationBackbone, options: BenchOptions, size: number): BackboneBench {
  const base = trainer(backbone, false, options, size);
  const drop = trainer(backbone, true, options, size);
  const { timings: [baseTiming, dropTiming], paired } = timeTraining([base, drop], options);
  const repeats = Math.max(3, options.steps);
  // Both networks predict at the feature resolution, so the comparison is the extra 1x1 conv + ReLU alone.
  const folded = drop.model.toFoldedModel();
  const [baselineMs, foldedMs] = timeInference(
    [() => base.model.network.predict(base.images) as tf.Tensor, () => folded.predict(drop.images) as tf.Tensor],
    repeats,
  );
  const result: BackboneBench = {
    name,
    config: { batch: options.batch, size, classes: options.classes },
    trainableParams: { baseline: base.model.countParams(), dropclass: drop.model.countParams() },
    baseline: baseTiming,
    dropclass: dropTiming,
    dropclassOverheadPercent: (100 * (dropTiming.medianMs - baseTiming.medianMs)) / baseTiming.medianMs,
    dropclassOverheadPaired: paired,
    inference: { baselineMs, foldedMs, foldedOverheadPercent: (100 * (foldedMs - baselineMs)) / baselineMs },
  };
  tf.dispose([base.images, base.labels, drop.images, drop.labels]);
  base.model.dispose();
  drop.model.dispose();
  return result;
}

/** Runs the PyTorch anchor with the bench's configuration; what went wrong, with what to install, when it cannot. */
export async function runTorchAnchor(options: BenchOptions): Promise<BenchReport['torch']> {
  if (!options.torchScript || !existsSync(options.torchScript)) return { error: `PyTorch anchor script not found at ${options.torchScript}; give one with --torch SCRIPT or pass --no-torch` };
  const args = [options.torchScript, options.batch, options.size, options.base, options.depth, options.classes, options.steps, options.featureChannels ?? 0].map(String);
  try {
    const { stdout } = await promisify(execFile)(options.python, args, { timeout: 30 * 60_000 });
    const parsed = JSON.parse(stdout.trim().split('\n').pop()!) as { baseline: { median_ms: number; params: number }; dropclass: { median_ms: number } };
    return { baselineMs: parsed.baseline.median_ms, dropclassMs: parsed.dropclass.median_ms, params: parsed.baseline.params, ratioDropclass: 0, ratioBaseline: 0 };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { error: `the python interpreter ${options.python} does not exist; ${TORCH_HINT}` };
    const said = e.stderr?.trim().split('\n').pop() || e.message.split('\n')[0];
    // The anchor exits 3 with its own explanation (what to install) when torch cannot be imported.
    if ((e.code as unknown) === 3) return { error: `${said} (or pass --no-torch)` };
    return { error: `${options.python} ${options.torchScript} did not run (${said}); ${TORCH_HINT}` };
  }
}

/** The training-step and inference benchmark: U-Net (and DeepLabV3) with DropClass off and on. */
export async function runBench(options: BenchOptions, log: (line: string) => void = () => {}, sizes: { deeplabWidth?: number; config?: string } = {}): Promise<BenchReport> {
  const backend = await initBackend({ backend: options.backend, threads: options.threads });
  const { featureChannels } = options;
  const widened = featureChannels === undefined ? '' : `, ${featureChannels} feature channels`;
  log(`U-Net base ${options.base} depth ${options.depth}${widened}, ${options.batch}x${options.size}x${options.size}x3, ${options.classes} classes: ${options.warmup} warm-up + ${options.steps} timed steps`);
  const unet = benchBackbone('unet', () => createBackbone('unet', { base: options.base, depth: options.depth, featureChannels }, { seed: 0 }), options, options.size);
  const deeplab = options.deeplab
    ? (log(`DeepLabV3-ResNet18 ${options.batch}x${options.deeplabSize}x${options.deeplabSize}x3`),
      benchBackbone('deeplabv3-resnet18', () => createBackbone('deeplabv3', { layout: 'resnet18', width: sizes.deeplabWidth ?? 1, outputStride: 16 }, { seed: 0 }), options, options.deeplabSize))
    : undefined;
  let torch = options.torchScript ? (log('PyTorch anchor (same U-Net, 2 threads)'), await runTorchAnchor(options)) : undefined;
  if (torch && !('error' in torch)) {
    torch = { ...torch, ratioDropclass: unet.dropclass.medianMs / torch.dropclassMs, ratioBaseline: unet.baseline.medianMs / torch.baselineMs };
  }
  return { backend, threads: backend === 'wasm' ? wasmThreadCount() : 0, native: backend === 'wasm' ? nativeKernelsState() : undefined, config: sizes.config ?? 'default', unet, deeplab, torch, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

export function formatBench(report: BenchReport): string {
  const rows: string[][] = [['backbone', 'mode', 'params', 'ms/step', 'img/s', 'tensors before->after']];
  for (const b of [report.unet, report.deeplab].filter((x): x is BackboneBench => !!x)) {
    for (const mode of ['baseline', 'dropclass'] as const) {
      const t = b[mode];
      rows.push([`${b.name} ${b.config.batch}x${b.config.size}`, mode, b.trainableParams[mode].toLocaleString('en'), t.medianMs.toFixed(1), t.imagesPerSecond.toFixed(2), `${t.tensorsBefore}->${t.tensorsAfter}`]);
    }
  }
  const lines = table(rows, 2);
  const native = report.native ? (report.native.active ? `; native kernels (${report.native.isa}, ${report.native.threads} threads)` : `; native kernels off (${report.native.reason})`) : '';
  lines.unshift(`configuration ${report.config}; backend ${report.backend}, threads ${report.threads}${native}`);
  for (const b of [report.unet, report.deeplab].filter((x): x is BackboneBench => !!x)) {
    const paired = b.dropclassOverheadPaired;
    const pairs = `step by step: median ${paired.medianPercent.toFixed(1)}%, middle half ${paired.lowPercent.toFixed(1)}% to ${paired.highPercent.toFixed(1)}%`;
    lines.push(`${b.name}: DropClass overhead ${b.dropclassOverheadPercent.toFixed(1)}% per training step (${pairs}); folded inference ${b.inference.foldedMs.toFixed(1)} ms vs baseline ${b.inference.baselineMs.toFixed(1)} ms (${b.inference.foldedOverheadPercent.toFixed(1)}%)`);
  }
  if (report.torch) {
    lines.push(
      'error' in report.torch
        ? `PyTorch anchor: ${report.torch.error}`
        : `PyTorch CPU (same run): baseline ${report.torch.baselineMs.toFixed(1)} ms, DropClass ${report.torch.dropclassMs.toFixed(1)} ms per step (${report.torch.params.toLocaleString('en')} params); ` +
            `tfjs/PyTorch ratio: DropClass ${report.torch.ratioDropclass.toFixed(2)}x, baseline ${report.torch.ratioBaseline.toFixed(2)}x`,
    );
  }
  lines.push(`peak RSS ${report.peakRssMiB.toFixed(0)} MiB`);
  for (const b of [report.unet, report.deeplab].filter((x): x is BackboneBench => !!x)) {
    for (const mode of ['baseline', 'dropclass'] as const) {
      const profile = b[mode].profile;
      if (profile) lines.push('', formatProfile(`per-kernel profile, ${b.name} ${mode} (per step: calls, kernels' own ms, share of the step, MiB of new tensor data)`, profile, 25));
    }
  }
  return lines.join('\n');
}
