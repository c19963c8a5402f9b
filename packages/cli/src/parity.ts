import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DropClassModel, createDropClassModel, polyLearningRate } from '@dropclass/core';
import * as tf from '@tensorflow/tfjs-core';
import { createBackbone } from './backbones.js';
import type { RunConfig } from './config.js';
import { openTrainingData, trainingBatches } from './data.js';

/** The PyTorch twin shipped with this package (run with a python that has torch). */
export const TWIN_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../python/parity_twin.py');

const LOSS_TERMS = ['lossCe', 'lossDrop', 'lossSup', 'total'] as const;
type LossTerm = (typeof LOSS_TERMS)[number];
export type Losses = Record<LossTerm, number>;

/**
 * Tolerances of the lockstep comparison. Float32 arithmetic in another order (XNNPACK against
 * PyTorch's kernels) differs by about 1e-7 per operation, and training amplifies such differences
 * step by step, so no fixed bound holds over a long run. The yardstick is PyTorch's own float32
 * error: the twin trains the same run in float32 and in float64, and our run must stay as close to
 * PyTorch's float32 run as that run stays to the float64 one, within `driftFactor`. Two float32 runs
 * each about that far from the float64 run are about sqrt(2) times as far from each other; 3 leaves
 * room for that and for noise, where a real difference of computation shows at once (a quarter-pixel
 * shift in upsampling gave 8e-3 at the first step, thousands of times PyTorch's own 1e-6).
 */
export interface ParityTolerance {
  /** How many times PyTorch's own float32-vs-float64 difference ours may be (losses: RMS over the steps; each parameter tensor at the end). */
  driftFactor: number;
  /** Relative difference of the total loss allowed at the first step, before any training amplifies anything. */
  firstStep: number;
  /** Differences below this relative size always pass (PyTorch's own can be smaller by chance). */
  floor: number;
}

export const DEFAULT_TOLERANCE: ParityTolerance = { driftFactor: 3, firstStep: 1e-4, floor: 1e-4 };

export interface ParityOptions {
  config: RunConfig;
  steps: number;
  /** Where the dumped batches, weights and both sides' results go. */
  out: string;
  python: string;
  tolerance?: ParityTolerance;
  log: (line: string) => void;
  /** Print every step's losses (default true). */
  perStep?: boolean;
}

export interface ParityStep {
  step: number;
  droppedClass: number;
  progress: number;
  learningRate: number;
  ours: Losses;
  torch: Losses;
  torch64: Losses;
}

export interface ParameterDifference {
  name: string;
  /** |ours - torch| / |torch| (Frobenius norms). */
  relative: number;
  /** |torch32 - torch64| / |torch64|: PyTorch's own float32 drift for this tensor. */
  torchDrift: number;
}

export interface ParityResult {
  mode: 'dropclass' | 'baseline';
  steps: ParityStep[];
  /** Relative difference of the total loss at the first step. */
  firstStep: number;
  /** RMS over the steps of the total loss's relative difference: ours vs PyTorch float32, and PyTorch float32 vs float64. */
  lossRms: { ours: number; torchDrift: number };
  largestLossDifference: { step: number; relative: number; torchDrift: number };
  /** Every weight the training determines (PyTorch's float32 and float64 runs agree on it within 100%). */
  parameters: ParameterDifference[];
  /** Weights the loss does not determine (a bias followed by batch norm has no gradient): only rounding moves them. */
  undetermined: ParameterDifference[];
  /** The parameter whose difference is the largest multiple of PyTorch's own. */
  worstParameter: ParameterDifference;
  passed: boolean;
}

interface WeightEntry {
  name: string;
  layer: string;
  layerClass: string;
  shape: number[];
  trainable: boolean;
}

/** Every weight of the network in its order, with the layer it belongs to, and the values. */
function dumpWeights(model: DropClassModel): { entries: WeightEntry[]; data: Buffer } {
  const trainable = new Set(model.network.trainableWeights.map((w) => w.originalName));
  const entries: WeightEntry[] = [];
  const chunks: Buffer[] = [];
  // Layer by layer (the model's own `weights` lists every trainable weight before the others).
  for (const layer of model.network.layers) {
    for (const weight of layer.weights) {
      entries.push({ name: weight.originalName, layer: layer.name, layerClass: layer.getClassName(), shape: weight.shape as number[], trainable: trainable.has(weight.originalName) });
      const values = weight.read().dataSync() as Float32Array;
      chunks.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    }
  }
  return { entries, data: Buffer.concat(chunks) };
}

function splitWeights(entries: WeightEntry[], data: Buffer): Float32Array[] {
  const floats = new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  let offset = 0;
  return entries.map((e) => {
    const size = e.shape.reduce((a, b) => a * b, 1);
    const values = floats.subarray(offset, offset + size);
    offset += size;
    return values;
  });
}

function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-6);

/** Says how to get PyTorch when the interpreter cannot import it. */
export function checkTorch(python: string): void {
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `${python} cannot import torch (${probe.error?.message ?? probe.stderr.trim().split('\n').pop()}). ` +
        'The parity check trains a PyTorch twin beside our run: install PyTorch (Debian: apt-get install python3-torch, ' +
        'then use --python /usr/bin/python3; or pip install torch) and run the command again.',
    );
  }
}

/**
 * Lockstep parity with the PyTorch twin: trains `steps` steps of the run config here, dumping the
 * initial weights, every batch and every step's dropped class, then lets the twin
 * (`python/parity_twin.py`) train the same network from the same weights on the same batches, in
 * float32 and in float64, and compares the losses step by step and the weights at the end.
 */
export async function runParity(options: ParityOptions): Promise<ParityResult> {
  const { config, steps, out, log } = options;
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const mode = config.dropclass ? 'dropclass' : 'baseline';
  checkTorch(options.python);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });

  const data = await openTrainingData(config, log);
  const model = createDropClassModel(createBackbone(config.backbone, config.seed), {
    numClasses: data.numClasses,
    dropclass: config.dropclass,
    alpha: config.alpha,
    seed: config.seed,
    momentum: config.momentum,
    weightDecay: config.weightDecay,
  });
  const initial = dumpWeights(model);
  await writeFile(join(out, 'initial.bin'), initial.data);
  const imageChunks: Buffer[] = [];
  const labelChunks: Buffer[] = [];
  const ours: (Losses & { droppedClass: number; progress: number; learningRate: number })[] = [];
  let batchShape: number[] = [];
  log(`parity (${mode}): ${steps} steps of ${config.backbone.kind} here`);
  for await (const batch of trainingBatches(data, config, 0)) {
    const step = model.step;
    batchShape = batch.images.shape;
    const images = batch.images.dataSync() as Float32Array;
    imageChunks.push(Buffer.from(images.buffer.slice(images.byteOffset, images.byteOffset + images.byteLength)));
    labelChunks.push(Buffer.from(Int32Array.from(batch.labels.dataSync()).buffer));
    const progress = step / config.iterations;
    const learningRate = polyLearningRate(config.learningRate, step, config.iterations, config.polyPower);
    try {
      const losses = model.trainStep(batch.images, batch.labels, { progress, learningRate });
      ours.push({ ...losses, progress, learningRate });
    } finally {
      tf.dispose([batch.images, batch.labels]);
    }
    if (model.step >= steps) break;
  }
  const final = dumpWeights(model);
  model.dispose();
  await writeFile(join(out, 'ours-final.bin'), final.data);
  await writeFile(join(out, 'images.bin'), Buffer.concat(imageChunks));
  await writeFile(join(out, 'labels.bin'), Buffer.concat(labelChunks));
  const manifest = {
    format: 'dropclass-parity/1',
    backbone: config.backbone,
    numClasses: data.numClasses,
    dropclass: config.dropclass,
    alpha: config.alpha,
    recipe: {
      learningRate: config.learningRate,
      momentum: config.momentum,
      weightDecay: config.weightDecay,
      polyPower: config.polyPower,
      iterations: config.iterations,
    },
    steps,
    batchShape,
    weights: initial.entries,
    ours: ours.map(({ droppedClass, progress, learningRate, ...losses }) => ({ droppedClass, progress, learningRate, losses })),
  };
  await writeFile(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));

  log(`parity (${mode}): the PyTorch twin trains the same ${steps} steps in float32 and float64`);
  for (const dtype of ['float32', 'float64']) {
    const run = spawnSync(options.python, [TWIN_SCRIPT, out, dtype], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (run.status !== 0) throw new Error(`the PyTorch twin (${TWIN_SCRIPT}) failed on ${out} (${dtype}):\n${run.stderr || run.stdout}`);
  }
  const read = async (dtype: string) => ({
    losses: (JSON.parse(await readFile(join(out, `torch-${dtype}.json`), 'utf8')) as { losses: Losses[] }).losses,
    weights: splitWeights(initial.entries, await readFile(join(out, `torch-${dtype}-final.bin`))),
  });
  const [torch32, torch64] = [await read('float32'), await read('float64')];
  const oursWeights = splitWeights(final.entries, final.data);

  const result = compareParity(
    mode,
    ours.map((o) => ({ droppedClass: o.droppedClass, progress: o.progress, learningRate: o.learningRate, losses: Object.fromEntries(LOSS_TERMS.map((k) => [k, o[k]])) as Losses })),
    { ours: oursWeights, torch: torch32.weights, torch64: torch64.weights, names: initial.entries.map((e) => e.name) },
    { torch: torch32.losses, torch64: torch64.losses },
    tolerance,
  );
  await writeFile(join(out, 'parity.json'), JSON.stringify(result, null, 1));
  return result;
}

/**
 * Judges a lockstep run against `ParityTolerance`: our per-step losses and final weights against
 * PyTorch's float32 run, with PyTorch's float32-vs-float64 differences as the yardstick.
 */
export function compareParity(
  mode: ParityResult['mode'],
  ours: { droppedClass: number; progress: number; learningRate: number; losses: Losses }[],
  weights: { names: string[]; ours: ArrayLike<number>[]; torch: ArrayLike<number>[]; torch64: ArrayLike<number>[] },
  torch: { torch: Losses[]; torch64: Losses[] },
  tolerance: ParityTolerance = DEFAULT_TOLERANCE,
): ParityResult {
  const stepRows: ParityStep[] = ours.map((o, i) => ({
    step: i,
    droppedClass: o.droppedClass,
    progress: o.progress,
    learningRate: o.learningRate,
    ours: o.losses,
    torch: torch.torch[i],
    torch64: torch.torch64[i],
  }));
  let largestLossDifference = { step: 0, relative: 0, torchDrift: 0 };
  for (const row of stepRows) {
    const r = relative(row.ours.total, row.torch.total);
    if (r >= largestLossDifference.relative) largestLossDifference = { step: row.step, relative: r, torchDrift: relative(row.torch.total, row.torch64.total) };
  }
  const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0) / xs.length);
  const lossRms = {
    ours: rms(stepRows.map((r) => relative(r.ours.total, r.torch.total))),
    torchDrift: rms(stepRows.map((r) => relative(r.torch.total, r.torch64.total))),
  };
  const firstStep = relative(stepRows[0].ours.total, stepRows[0].torch.total);
  const all = weights.names.map((name, i) => ({
    name,
    relative: relativeDifference(weights.ours[i], weights.torch[i]),
    torchDrift: relativeDifference(weights.torch[i], weights.torch64[i]),
  }));
  const parameters = all.filter((p) => p.torchDrift <= 1);
  const undetermined = all.filter((p) => p.torchDrift > 1);
  const allowed = (p: ParameterDifference) => Math.max(tolerance.floor, tolerance.driftFactor * p.torchDrift);
  const worstParameter = parameters.reduce((a, b) => (b.relative / allowed(b) > a.relative / allowed(a) ? b : a));
  const passed =
    firstStep <= tolerance.firstStep &&
    lossRms.ours <= Math.max(tolerance.floor, tolerance.driftFactor * lossRms.torchDrift) &&
    parameters.every((p) => p.relative <= allowed(p));
  return { mode, steps: stepRows, firstStep, lossRms, largestLossDifference, parameters, undetermined, worstParameter, passed };
}

const fmt = (v: number) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(5) : v.toExponential(2));

/** The per-step table and the summary lines of a parity run. */
export function formatParity(result: ParityResult, tolerance: ParityTolerance = DEFAULT_TOLERANCE, perStep = true): string {
  const lines: string[] = [];
  if (perStep) {
    lines.push(
      `${result.mode}: step  z  t      lr       | ce ours   ce torch  | drop ours drop torch | sup ours  sup torch | total ours total torch rel.diff  torch f32-f64`,
    );
    for (const s of result.steps) {
      const rel = relative(s.ours.total, s.torch.total);
      const drift = relative(s.torch.total, s.torch64.total);
      lines.push(
        `${String(s.step).padStart(4 + result.mode.length + 2)} ${String(s.droppedClass).padStart(2)} ${s.progress.toFixed(3)} ${s.learningRate.toFixed(5)} | ` +
          `${fmt(s.ours.lossCe)} ${fmt(s.torch.lossCe)} | ${fmt(s.ours.lossDrop)} ${fmt(s.torch.lossDrop)} | ${fmt(s.ours.lossSup)} ${fmt(s.torch.lossSup)} | ` +
          `${fmt(s.ours.total)} ${fmt(s.torch.total)} ${rel.toExponential(2)} ${drift.toExponential(2)}`,
      );
    }
  }
  const l = result.largestLossDifference;
  const w = result.worstParameter;
  const e = (v: number) => v.toExponential(2);
  lines.push(
    `${result.mode}: first step: relative difference of the total loss ${e(result.firstStep)} (tolerance ${tolerance.firstStep})`,
    `${result.mode}: total loss over ${result.steps.length} steps: RMS relative difference ${e(result.lossRms.ours)}, PyTorch float32 vs float64 ${e(result.lossRms.torchDrift)} ` +
      `(ratio ${(result.lossRms.ours / result.lossRms.torchDrift).toFixed(2)}, tolerance ${tolerance.driftFactor}); largest ${e(l.relative)} at step ${l.step} (PyTorch's own there ${e(l.torchDrift)})`,
    `${result.mode}: parameters after ${result.steps.length} steps: worst ${w.name}, relative difference ${e(w.relative)}, PyTorch float32 vs float64 ${e(w.torchDrift)} ` +
      `(ratio ${(w.relative / w.torchDrift).toFixed(2)}, tolerance ${tolerance.driftFactor}); largest relative difference of any of the ${result.parameters.length} tensors ` +
      `${e(Math.max(...result.parameters.map((p) => p.relative)))}`,
  );
  if (result.undetermined.length) {
    lines.push(
      `${result.mode}: not compared, no gradient reaches them (PyTorch float32 vs float64 differ by more than 100%): ${result.undetermined.map((p) => p.name).join(', ')}`,
    );
  }
  lines.push(`${result.mode}: ${result.passed ? 'within tolerance' : 'OUTSIDE TOLERANCE'}`);
  return lines.join('\n');
}

