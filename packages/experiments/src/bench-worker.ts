/**
 * One point of a points configuration of the bench (`bench-points.ts`), in its own process so that
 * its peak resident memory is its own: `node dist/bench-worker.js SPEC` with the JSON `PointSpec`;
 * prints the `PointResult` as one line of JSON, progress on stderr. The PyTorch anchor
 * (`python/torch_bench.py --spec SPEC`) takes the same spec.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { type InferenceModel, type SegmentationBackbone, DropClassModel, createBackbone, inferLogits } from '@dropclass/core';
import { type BackendName, initBackend, nativeKernelsState, wasmThreadCount } from '@dropclass/tfjs-wasm-train';
// the backbones a point names by kind, from the registry their packages fill when imported
import '@dropclass/backbone-deeplab';
import '@dropclass/backbone-unet';
import { median } from './figures.js';

/** An image to predict: whole, or window by window (`window`, `stride` as core's `InferenceOptions`). */
export interface InferenceImage {
  name: string;
  height: number;
  width: number;
  window?: [number, number];
  stride?: [number, number];
}

/** What one process measures: a training step's time, or predictions' times; both with its peak memory. */
export interface PointSpec {
  task: 'train' | 'infer';
  backbone: { kind: 'deeplabv3' | 'unet'; options: Record<string, unknown> };
  classes: number;
  dropclass: boolean;
  /** Threads (wasm here, torch.set_num_threads there). */
  threads?: number;
  backend?: BackendName;
  batch?: number;
  height?: number;
  width?: number;
  warmup?: number;
  steps?: number;
  repeats?: number;
  images?: InferenceImage[];
}

/** What a process measured (either side); `stepsMs`..`tensorsAfter` for training, `images` for inference. */
export interface PointResult {
  params: number;
  /** Median of the timed steps. */
  medianMs?: number;
  stepsMs?: number[];
  warmupMs?: number[];
  images?: { name: string; windows: number; medianMs: number; timesMs: number[] }[];
  /** Peak resident memory of the whole process (getrusage's maxrss), MiB. */
  maxRssMiB: number;
  /** Here: tensors alive before and after the timed steps, and after everything was disposed (0 expected). */
  tensorsBefore?: number;
  tensorsAfter?: number;
  tensorsLeft?: number;
  backend?: string;
  threads: number;
  native?: string;
  /** There: the torch version. */
  torch?: string;
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

function backbone(spec: PointSpec): SegmentationBackbone {
  return createBackbone(spec.backbone.kind, spec.backbone.options, { seed: 0 });
}

/** Predictions of the folded network (image -> logits at feature resolution), brought to the input's size by bilinear resizing with half-pixel centres (tfjs's kernel; `predictLogits` computes the same resize as matrix products). */
function foldedInference(model: DropClassModel): { model: InferenceModel; dispose: () => void } {
  const folded = model.toFoldedModel();
  const predictLogits = (images: tf.Tensor4D) =>
    tf.tidy(() => tf.image.resizeBilinear(folded.predict(images) as tf.Tensor4D, [images.shape[1], images.shape[2]], false, true));
  // The folded network shares the backbone's layers with the model; only its own (the folded head) are disposed here.
  const own = folded.layers.filter((layer) => !model.network.layers.includes(layer));
  return { model: { info: model.info, predictLogits }, dispose: () => own.forEach((layer) => layer.dispose()) };
}

/** Measures one point in this process (the worker's body). */
export async function runPoint(spec: PointSpec): Promise<PointResult> {
  const backend = await initBackend({ backend: spec.backend, threads: spec.threads, quiet: true });
  const native = backend === 'wasm' ? nativeKernelsState() : undefined;
  const about = {
    backend,
    threads: backend === 'wasm' ? wasmThreadCount() : 0,
    native: !native ? undefined : native.active ? `${native.isa}, ${native.threads} threads` : `off (${native.reason})`,
  };
  const tensorsAtStart = tf.memory().numTensors;
  const model = DropClassModel.create(backbone(spec), { numClasses: spec.classes, dropclass: spec.dropclass, seed: 0 });
  const params = model.countParams();
  let result: PointResult;
  if (spec.task === 'train') {
    const { batch = 2, height = 64, width = 64, warmup = 1, steps = 3 } = spec;
    const images = tf.randomNormal([batch, height, width, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.randomUniform([batch, height, width], 0, spec.classes, 'int32', 2) as tf.Tensor3D;
    const times: number[] = [];
    let tensorsBefore = 0;
    for (let i = 0; i < warmup + steps; i++) {
      if (i === warmup) tensorsBefore = tf.memory().numTensors;
      const t0 = performance.now();
      model.trainStep(images, labels, { progress: 0.5, learningRate: 0.01, droppedClass: spec.dropclass ? i % spec.classes : undefined });
      times.push(performance.now() - t0);
      progress(`  tfjs step ${i + 1}/${warmup + steps}${i < warmup ? ' (warm-up)' : ''}: ${times[i].toFixed(0)} ms`);
    }
    const tensorsAfter = tf.memory().numTensors;
    tf.dispose([images, labels]);
    const timed = times.slice(warmup);
    result = { ...about, params, medianMs: median(timed), stepsMs: timed, warmupMs: times.slice(0, warmup), tensorsBefore, tensorsAfter, maxRssMiB: 0 };
  } else {
    const folded = foldedInference(model);
    const repeats = spec.repeats ?? 3;
    const results: NonNullable<PointResult['images']> = [];
    for (const entry of spec.images ?? []) {
      const image = tf.randomNormal([1, entry.height, entry.width, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
      const options = entry.window ? { window: entry.window, ...(entry.stride ? { stride: entry.stride } : {}) } : {};
      const predict = () => {
        const logits = inferLogits(folded.model, image, options);
        logits.dataSync();
        logits.dispose();
      };
      predict(); // warm-up
      const times: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        predict();
        times.push(performance.now() - t0);
        progress(`  tfjs ${entry.name}: ${times[r].toFixed(0)} ms`);
      }
      image.dispose();
      results.push({ name: entry.name, windows: windowCount(entry), medianMs: median(times), timesMs: times });
    }
    folded.dispose();
    result = { ...about, params, images: results, maxRssMiB: 0 };
  }
  model.dispose();
  return { ...result, tensorsLeft: tf.memory().numTensors - tensorsAtStart, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

/** Window offsets along one side, as core's sliding-window inference places them. */
function windowStarts(size: number, window: number, stride: number): number {
  if (size <= window) return 1;
  let n = 0;
  for (let s = 0; s + window < size; s += stride) n++;
  return n + 1;
}

/** How many windows core's sliding-window inference predicts for an image (1 without a window). */
export function windowCount(image: InferenceImage): number {
  if (!image.window) return 1;
  const [wh, ww] = image.window;
  const [sh, sw] = image.stride ?? [Math.ceil(wh / 2), Math.ceil(ww / 2)];
  return windowStarts(Math.max(image.height, wh), wh, sh) * windowStarts(Math.max(image.width, ww), ww, sw);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runPoint(JSON.parse(process.argv[2]) as PointSpec).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: Error) => {
      process.stderr.write(`bench-worker: ${error.message}\n`);
      process.exit(1);
    },
  );
}
