import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DropClassModel, polyLearningRate } from '@dropclass/core';
import * as tf from '@tensorflow/tfjs-core';
import { type RunConfig, openTrainingData, trainingBatches, createRunModel, removeMarked } from '@dropclass/train';

/** The PyTorch twin shipped with this package (run with a python that has torch and torchvision). */
export const TWIN_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../python/parity_twin.py');

const LOSS_TERMS = ['lossCe', 'lossDrop', 'lossSup', 'total'] as const;
export type Losses = Record<(typeof LOSS_TERMS)[number], number>;

/**
 * Tolerances of the lockstep comparison.
 *
 * Every step is checked from the same state: before step s the twin loads our weights, batch-norm
 * statistics and momentum buffers, takes the step in float32 and in float64 on the same batch with
 * the same dropped class, and our step is compared with the float64 one. Ours may be off by at most
 * `factor` times PyTorch's own float32 step (its distance to the float64 step), or `floor`: the
 * loss at every step; the weight update and the batch-norm statistics in RMS over the steps and at
 * their largest (one step's update error is heavy-tailed for both). Two
 * float32 implementations that each round about as much are about sqrt(2) times that apart; 3
 * leaves room for that, where a real difference of computation is off by orders of magnitude (a
 * quarter-pixel shift in upsampling made the first loss differ by 8e-3, PyTorch's own float32 error
 * there being 1e-6).
 *
 * Runs left to themselves (free runs) cannot be held to a tolerance over many steps: training
 * amplifies rounding, and PyTorch's float32 and float64 runs of the main job's recipe part within
 * a few dozen steps. Those are reported (the step where each pair parts), not judged.
 */
export interface ParityTolerance {
  factor: number;
  /** Relative differences below this always pass (PyTorch's own float32 error can be smaller by chance). */
  floor: number;
  /**
   * The same for the loss of one step. Our forward pass rounds more than PyTorch's (its loss is
   * about 1e-5 off PyTorch float64 in RMS, at most 8e-5, where PyTorch float32's is 3e-6, at most 2e-5,
   * in 200 steps of the main job's network), while a real difference of computation shows at 1e-3
   * and above; weight updates, where errors would accumulate, are held to `factor` alone.
   */
  lossFloor: number;
}

export const DEFAULT_TOLERANCE: ParityTolerance = { factor: 3, floor: 1e-5, lossFloor: 2e-4 };

/** Two runs "part" at the first step where their total losses differ by more than this. */
export const PARTING = 1e-2;

export interface ParityOptions {
  config: RunConfig;
  steps: number;
  /** Where the dumped batches, states and both sides' results go. */
  out: string;
  python: string;
  tolerance?: ParityTolerance;
  log: (line: string) => void;
}

/** One step taken from the same state by us and by the twin in float32 and float64. */
export interface ParityStep {
  step: number;
  droppedClass: number;
  progress: number;
  learningRate: number;
  ours: Losses;
  torch32: Losses;
  torch64: Losses;
  /** Distance of the updated trainable weights from the float64 step, relative to the float64 update. */
  update: { ours: number; torch32: number };
  /** The same for the batch-norm moving statistics. */
  statistics: { ours: number; torch32: number };
}

export interface ParityResult {
  mode: 'dropclass' | 'baseline';
  steps: ParityStep[];
  /** The worst step of each check, as a multiple of what the tolerance allows there. */
  worst: { loss: { step: number; ratio: number }; update: { step: number; ratio: number }; statistics: { step: number; ratio: number } };
  /** Free runs from the same initial weights: the first step where each pair differs by more than `PARTING` (null: never). */
  free: { oursVsTorch32: number | null; torch32VsTorch64: number | null; finalLoss: { ours: number; torch32: number; torch64: number } };
  passed: boolean;
}

interface WeightEntry {
  name: string;
  layer: string;
  layerClass: string;
  shape: number[];
  trainable: boolean;
}

/**
 * The network's weights layer by layer, in the order the layers were made (the twin's modules
 * follow it; the model's own `weights` lists every trainable weight first, its `layers` are sorted
 * by graph depth), followed by the momentum buffer of every trainable weight (zeros before its first
 * step).
 */
function snapshot(model: DropClassModel): { entries: WeightEntry[]; data: Buffer } {
  const trainable = new Set(model.network.trainableWeights.map((w) => w.originalName));
  const momentum = model.momentumBuffers();
  const layers = [...model.network.layers].sort((a, b) => (a as unknown as { id: number }).id - (b as unknown as { id: number }).id);
  const entries: WeightEntry[] = [];
  const weights: Float32Array[] = [];
  for (const layer of layers) {
    for (const weight of layer.weights) {
      entries.push({ name: weight.originalName, layer: layer.name, layerClass: layer.getClassName(), shape: weight.shape as number[], trainable: trainable.has(weight.originalName) });
      weights.push(weight.read().dataSync() as Float32Array);
    }
  }
  const buffers = entries.map((e, i) => (e.trainable ? ((momentum[e.name]?.dataSync() as Float32Array | undefined) ?? new Float32Array(weights[i].length)) : undefined));
  const chunks = [...weights, ...buffers.filter((b): b is Float32Array => b !== undefined)];
  return { entries, data: Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))) };
}

/** Says how to get PyTorch and torchvision (the twin's networks) when the interpreter cannot import them. */
export function checkTorch(python: string): void {
  const probe = spawnSync(python, ['-c', 'import torch, torchvision; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `${python} cannot import torch and torchvision (${probe.error?.message ?? probe.stderr.trim().split('\n').pop()}). ` +
        'The parity check trains a PyTorch twin beside our run: install PyTorch (Debian: apt-get install python3-torch python3-torchvision, ' +
        'then use --python /usr/bin/python3; or pip install torch torchvision) and run the command again.',
    );
  }
}

function runTwin(python: string, out: string, mode: string): void {
  const run = spawnSync(python, [TWIN_SCRIPT, out, mode], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.status !== 0) throw new Error(`the PyTorch twin (${TWIN_SCRIPT}) failed on ${out} (${mode}):\n${run.stderr || run.stdout}`);
}

interface TwinTeacherStep {
  torch32: Losses;
  torch64: Losses;
  update: { ours: number; torch32: number };
  statistics: { ours: number; torch32: number };
}

/**
 * Lockstep parity with the PyTorch twin (`python/parity_twin.py`): trains `steps` steps of the run
 * config here, dumping the initial weights, the state before every step, every batch and every
 * step's dropped class. The twin then (1) takes every step again from our state in float32 and
 * float64 and (2) trains the whole run from the initial weights in float32 and in float64.
 */
/** Marks a parity folder (`--out`): only a folder that carries it is replaced by the next parity run. */
export const PARITY_MARKER = 'dropclass-parity.json';

export async function runParity(options: ParityOptions): Promise<ParityResult> {
  const { config, steps, out, log } = options;
  const mode = config.dropclass ? 'dropclass' : 'baseline';
  checkTorch(options.python);
  await removeMarked(out, PARITY_MARKER, 'a parity folder', 'Give --out another folder, or move that one away.');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, PARITY_MARKER), `${JSON.stringify({ format: 'dropclass-parity/1' })}\n`);

  const data = await openTrainingData(config, log);
  const model = createRunModel(config, data);
  const ours: { droppedClass: number; progress: number; learningRate: number; losses: Losses }[] = [];
  let entries: WeightEntry[] = [];
  let batchShape: number[] = [];
  log(`parity (${mode}): ${steps} steps of ${config.backbone.kind} here`);
  try {
    for await (const batch of trainingBatches(data, config, 0)) {
      const step = model.step;
      const state = snapshot(model);
      entries = state.entries;
      await appendFile(join(out, 'states.bin'), state.data);
      batchShape = batch.images.shape;
      const images = batch.images.dataSync() as Float32Array;
      await appendFile(join(out, 'images.bin'), Buffer.from(images.buffer, images.byteOffset, images.byteLength));
      await appendFile(join(out, 'labels.bin'), Buffer.from(Int32Array.from(batch.labels.dataSync()).buffer));
      const progress = step / config.iterations;
      const learningRate = polyLearningRate(config.learningRate, step, config.iterations, config.polyPower);
      try {
        const { droppedClass, ...losses } = model.trainStep(batch.images, batch.labels, { progress, learningRate });
        ours.push({ droppedClass, progress, learningRate, losses });
      } finally {
        tf.dispose([batch.images, batch.labels]);
      }
      if (model.step >= steps) break;
    }
    await appendFile(join(out, 'states.bin'), snapshot(model).data);
  } finally {
    model.dispose();
  }
  const manifest = {
    format: 'dropclass-parity/2',
    backbone: config.backbone,
    numClasses: data.numClasses,
    dropclass: config.dropclass,
    alpha: config.alpha,
    recipe: { learningRate: config.learningRate, momentum: config.momentum, weightDecay: config.weightDecay, polyPower: config.polyPower, iterations: config.iterations },
    steps: ours.length,
    batchShape,
    weights: entries,
    ours,
  };
  await writeFile(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));

  log(`parity (${mode}): the PyTorch twin takes every step again from our state (float32 and float64)`);
  runTwin(options.python, out, 'teacher');
  log(`parity (${mode}): the PyTorch twin trains the whole run from the same initial weights (float32, then float64)`);
  runTwin(options.python, out, 'free32');
  runTwin(options.python, out, 'free64');
  const read = async <T>(file: string) => JSON.parse(await readFile(join(out, file), 'utf8')) as T;
  const teacher = (await read<{ steps: TwinTeacherStep[] }>('torch-teacher.json')).steps;
  const free32 = (await read<{ losses: Losses[] }>('torch-free32.json')).losses;
  const free64 = (await read<{ losses: Losses[] }>('torch-free64.json')).losses;
  const result = compareParity(
    mode,
    ours.map(({ losses, ...o }, i) => ({ step: i, ...o, ours: losses, ...teacher[i] })),
    { ours: ours.map((o) => o.losses), torch32: free32, torch64: free64 },
    options.tolerance,
  );
  await writeFile(join(out, 'parity.json'), JSON.stringify(result, null, 1));
  return result;
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/** The first step where two loss curves differ by more than `PARTING`, or null. */
function partingStep(a: Losses[], b: Losses[]): number | null {
  const i = a.findIndex((l, s) => relative(l.total, b[s].total) > PARTING);
  return i < 0 ? null : i;
}

/** Judges the teacher-forced steps against `ParityTolerance` and summarises the free runs. */
export function compareParity(
  mode: ParityResult['mode'],
  rows: ParityStep[],
  free: { ours: Losses[]; torch32: Losses[]; torch64: Losses[] },
  tolerance: ParityTolerance = DEFAULT_TOLERANCE,
): ParityResult {
  const ratio = (ours: number, torch32: number) => ours / Math.max(tolerance.floor, tolerance.factor * torch32);
  const worstStep = (value: (r: ParityStep) => number) =>
    rows.reduce((w, r) => (value(r) > w.ratio ? { step: r.step, ratio: value(r) } : w), { step: 0, ratio: 0 });
  // One step's update error is heavy-tailed (a ReLU or max-pool tie tips either way), so updates are
  // held to PyTorch's own over the run: the RMS and the largest over the steps.
  const overRun = (pick: (r: ParityStep) => { ours: number; torch32: number }) => {
    const ours = rows.map((r) => pick(r).ours);
    const torch = rows.map((r) => pick(r).torch32);
    const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0) / xs.length);
    const largest = ours.indexOf(Math.max(...ours));
    return { step: largest, ratio: Math.max(ratio(rms(ours), rms(torch)), ratio(ours[largest], Math.max(...torch))) };
  };
  const worst = {
    loss: worstStep((r) => relative(r.ours.total, r.torch64.total) / Math.max(tolerance.lossFloor, tolerance.factor * relative(r.torch32.total, r.torch64.total))),
    update: overRun((r) => r.update),
    statistics: overRun((r) => r.statistics),
  };
  const last = free.ours.length - 1;
  return {
    mode,
    steps: rows,
    worst,
    free: {
      oursVsTorch32: partingStep(free.ours, free.torch32),
      torch32VsTorch64: partingStep(free.torch32, free.torch64),
      finalLoss: { ours: free.ours[last].total, torch32: free.torch32[last].total, torch64: free.torch64[last].total },
    },
    passed: worst.loss.ratio <= 1 && worst.update.ratio <= 1 && worst.statistics.ratio <= 1,
  };
}

const fmt = (v: number) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(5) : v.toExponential(2));
const e = (v: number) => v.toExponential(1);

/** The per-step table and the summary lines of a parity run. */
export function formatParity(result: ParityResult, tolerance: ParityTolerance = DEFAULT_TOLERANCE, perStep = true): string {
  const m = result.mode;
  const lines: string[] = [];
  if (perStep) {
    lines.push(
      `${m}: every step from the same state; losses ours / PyTorch float32, relative differences from PyTorch float64 (ours, PyTorch float32)`,
      `${m}: step  z     t      lr |  ce ours  ce torch | drop ours drop torch | sup ours sup torch | total ours total torch | loss diff       | update diff     | stats diff`,
    );
    for (const s of result.steps) {
      const pair = (a: number, b: number) => `${e(a)} ${e(b)}`;
      lines.push(
        `${m}: ${String(s.step).padStart(4)} ${String(s.droppedClass).padStart(2)} ${s.progress.toFixed(3)} ${s.learningRate.toFixed(5)} | ` +
          `${fmt(s.ours.lossCe)} ${fmt(s.torch32.lossCe)} | ${fmt(s.ours.lossDrop)} ${fmt(s.torch32.lossDrop)} | ${fmt(s.ours.lossSup)} ${fmt(s.torch32.lossSup)} | ` +
          `${fmt(s.ours.total)} ${fmt(s.torch32.total)} | ` +
          `${pair(relative(s.ours.total, s.torch64.total), relative(s.torch32.total, s.torch64.total))} | ${pair(s.update.ours, s.update.torch32)} | ${pair(s.statistics.ours, s.statistics.torch32)}`,
      );
    }
  }
  const w = result.worst;
  const f = result.free;
  const parted = (s: number | null) => (s === null ? `never in ${result.steps.length} steps` : `at step ${s}`);
  lines.push(
    `${m}: ${result.steps.length} steps from the same state, each check as a share of its tolerance (1 = at the tolerance; ` +
      `${tolerance.factor}x PyTorch's own float32 error, at least ${tolerance.floor}, for the loss ${tolerance.lossFloor}): loss at the worst step ${w.loss.ratio.toFixed(2)} (step ${w.loss.step}); ` +
      `weight update ${w.update.ratio.toFixed(2)} and batch-norm statistics ${w.statistics.ratio.toFixed(2)} (RMS and largest over the steps; largest at steps ${w.update.step} and ${w.statistics.step})`,
    `${m}: free runs from the same initial weights part (total loss more than ${PARTING * 100}% apart): ours and PyTorch float32 ${parted(f.oursVsTorch32)}, ` +
      `PyTorch float32 and float64 ${parted(f.torch32VsTorch64)}; final loss ours ${fmt(f.finalLoss.ours)}, PyTorch float32 ${fmt(f.finalLoss.torch32)}, float64 ${fmt(f.finalLoss.torch64)}`,
    `${m}: ${result.passed ? 'within tolerance' : 'OUTSIDE TOLERANCE'}`,
  );
  return lines.join('\n');
}
