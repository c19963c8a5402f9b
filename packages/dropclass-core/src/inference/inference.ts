import * as tf from '@tensorflow/tfjs-core';
import { NO_CLASS_DROPPED } from '../dropclass/importance.js';
import { resizeBilinear } from '../dropclass/upsample.js';
import { nearestValidSize } from '../model/input.js';
import type { DropClassModel } from '../model/model.js';

/**
 * How to predict whole images. Without a window the image is padded to a size the backbone takes,
 * predicted in one pass and cropped back. With a window it is predicted window by window, and the
 * logits of overlapping windows are averaged. `flip` and `scales` add test-time augmentation: the
 * logits of every pass, brought back to the image's size and orientation, are averaged.
 */
export interface InferenceOptions {
  /** Window `[height, width]` for sliding-window inference; both sides must be sizes the backbone takes. */
  window?: [number, number];
  /** Step `[height, width]` between windows, at most the window; default half the window (rounded up). */
  stride?: [number, number];
  /** Also predict the horizontally flipped image and average. Default false. */
  flip?: boolean;
  /** Image scales to predict at and average (e.g. `[0.75, 1, 1.25]`). Default `[1]`. */
  scales?: number[];
  /** Suppress this class's features (dependency diagnostic); default none. */
  droppedClass?: number;
}

/** What inference needs of a model: its backbone's input sizes and its logits. */
export type InferenceModel = Pick<DropClassModel, 'info' | 'predictLogits'>;

/** Thrown for inference options that cannot work; says which value is wrong and what would work. */
export class InferenceOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InferenceOptionsError';
  }
}

type Backbone = InferenceModel['info']['backbone'];

/** The smallest size >= `size` that the backbone takes. */
export function paddedInputSize(size: number, backbone: Pick<Backbone, 'inputSizeMultiple' | 'minInputSize'>): number {
  const m = backbone.inputSizeMultiple;
  return Math.max(Math.ceil(size / m) * m, Math.ceil(backbone.minInputSize / m) * m);
}

const isPair = (v: unknown): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every((n) => Number.isInteger(n) && n > 0);

/**
 * Checks inference options against a backbone and returns them complete (stride, flip and scales
 * filled in); throws {@link InferenceOptionsError} naming the bad value and what would work.
 */
export function checkInferenceOptions(options: InferenceOptions, backbone: Backbone): Required<Omit<InferenceOptions, 'window' | 'stride'>> & Pick<InferenceOptions, 'window' | 'stride'> {
  const { window, stride } = options;
  if (window !== undefined) {
    if (!isPair(window)) throw new InferenceOptionsError(`window must be [height, width] in positive whole pixels, got ${JSON.stringify(window)}`);
    const { inputSizeMultiple: m, minInputSize: min } = backbone;
    if (window.some((s) => s % m !== 0 || s < min)) {
      const fix = window.map((s) => nearestValidSize(s, m, min));
      throw new InferenceOptionsError(
        `window ${window[0]}x${window[1]} cannot be taken by the ${backbone.name} backbone: sides must be multiples of ${m} and at least ${min}; use ${fix[0]}x${fix[1]}`,
      );
    }
  }
  if (stride !== undefined) {
    if (!window) throw new InferenceOptionsError(`stride ${JSON.stringify(stride)} needs a window: give window [height, width] as well`);
    if (!isPair(stride)) throw new InferenceOptionsError(`stride must be [height, width] in positive whole pixels, got ${JSON.stringify(stride)}`);
    if (stride[0] > window[0] || stride[1] > window[1]) {
      throw new InferenceOptionsError(`stride ${stride[0]}x${stride[1]} is larger than the window ${window[0]}x${window[1]}, which would leave pixels unpredicted; use a stride of at most the window`);
    }
  }
  const scales = options.scales ?? [1];
  if (!Array.isArray(scales) || scales.length === 0 || !scales.every((s) => Number.isFinite(s) && s > 0)) {
    throw new InferenceOptionsError(`scales must be a non-empty list of positive numbers (e.g. [0.75, 1, 1.25]), got ${JSON.stringify(options.scales)}`);
  }
  if (options.flip !== undefined && typeof options.flip !== 'boolean') throw new InferenceOptionsError(`flip must be true or false, got ${JSON.stringify(options.flip)}`);
  return {
    window,
    stride: window ? (stride ?? [Math.ceil(window[0] / 2), Math.ceil(window[1] / 2)]) : undefined,
    flip: options.flip ?? false,
    scales,
    droppedClass: options.droppedClass ?? NO_CLASS_DROPPED,
  };
}

/** One pass on the whole image: padded to a size the backbone takes, cropped back. */
function wholeImageLogits(model: InferenceModel, images: tf.Tensor4D, droppedClass: number): tf.Tensor4D {
  const [batch, height, width] = images.shape;
  const h = paddedInputSize(height, model.info.backbone);
  const w = paddedInputSize(width, model.info.backbone);
  if (h === height && w === width) return model.predictLogits(images, droppedClass);
  return tf.tidy(() => {
    const padded = tf.pad(images, [[0, 0], [0, h - height], [0, w - width], [0, 0]]);
    const logits = model.predictLogits(padded, droppedClass);
    return tf.slice(logits, [0, 0, 0, 0], [batch, height, width, logits.shape[3]]);
  });
}

/** Window start offsets along one side: every `stride`, the last one flush with the end. */
function windowStarts(size: number, window: number, stride: number): number[] {
  if (size <= window) return [0];
  const starts: number[] = [];
  for (let s = 0; s + window < size; s += stride) starts.push(s);
  starts.push(size - window);
  return starts;
}

/**
 * The tiles of one side: the intervals between consecutive window edges inside `[0, size)` (every
 * window's start and end, clipped to the side). Each tile is covered by the same windows throughout.
 */
function tileEdges(size: number, starts: number[], window: number): number[] {
  const edges = new Set([0, size]);
  for (const start of starts) {
    edges.add(Math.min(start, size));
    edges.add(Math.min(start + window, size));
  }
  return [...edges].sort((a, b) => a - b);
}

/**
 * One pass window by window: the image is padded up to the window where it is smaller and each
 * window predicted alone. The image is cut into tiles along every window edge, so that each tile is
 * covered by the same windows throughout: each tile's logits are summed as a tensor, window after
 * window, divided by how many windows covered it, and the tiles joined row by row into the
 * image's logits. Only one window's prediction is alive at a time, beside the sums of the image's
 * logits.
 */
function slidingWindowLogits(model: InferenceModel, images: tf.Tensor4D, window: [number, number], stride: [number, number], droppedClass: number): tf.Tensor4D {
  const [batch, height, width, channels] = images.shape;
  const [wh, ww] = window;
  const padH = Math.max(height, wh);
  const padW = Math.max(width, ww);
  const ys = windowStarts(padH, wh, stride[0]);
  const xs = windowStarts(padW, ww, stride[1]);
  const rowEdges = tileEdges(height, ys, wh);
  const colEdges = tileEdges(width, xs, ww);
  // sums[i][j]: the logits summed over the windows that covered tile (i, j), with their count
  const sums = rowEdges.slice(1).map(() => colEdges.slice(1).map(() => ({ sum: undefined as tf.Tensor4D | undefined, count: 0 })));
  const padded = padH === height && padW === width ? images : tf.pad(images, [[0, 0], [0, padH - height], [0, padW - width], [0, 0]]);
  try {
    for (const y0 of ys) {
      for (const x0 of xs) {
        const logits = tf.tidy(() => model.predictLogits(tf.slice(padded, [0, y0, x0, 0], [batch, wh, ww, channels]), droppedClass));
        for (let i = 0; i + 1 < rowEdges.length; i++) {
          const [top, bottom] = [rowEdges[i], rowEdges[i + 1]];
          if (top < y0 || bottom > y0 + wh) continue;
          for (let j = 0; j + 1 < colEdges.length; j++) {
            const [left, right] = [colEdges[j], colEdges[j + 1]];
            if (left < x0 || right > x0 + ww) continue;
            const tile = sums[i][j];
            const previous = tile.sum;
            tile.sum = tf.tidy(() => {
              const part = tf.slice(logits, [0, top - y0, left - x0, 0], [batch, bottom - top, right - left, logits.shape[3]]);
              return previous ? tf.add<tf.Tensor4D>(previous, part) : part;
            });
            previous?.dispose();
            tile.count += 1;
          }
        }
        logits.dispose();
      }
    }
    // Each row of tiles averaged, joined and read into the image's logits, its tensors freed at
    // once: tensor memory never holds the logits twice, and the result is made once.
    const classes = sums[0][0].sum!.shape[3];
    const out = new Float32Array(batch * height * width * classes);
    const perImage = height * width * classes;
    sums.forEach((row, i) => {
      const joined = tf.tidy(() => {
        const averaged = row.map(({ sum, count }) => (count === 1 ? sum! : tf.div(sum!, count)));
        return averaged.length === 1 ? averaged[0].clone() : tf.concat(averaged, 2);
      });
      for (const tile of row) tile.sum!.dispose();
      const values = joined.dataSync() as Float32Array;
      joined.dispose();
      const rowSize = (rowEdges[i + 1] - rowEdges[i]) * width * classes;
      for (let b = 0; b < batch; b++) out.set(values.subarray(b * rowSize, (b + 1) * rowSize), b * perImage + rowEdges[i] * width * classes);
    });
    return tf.tensor4d(out, [batch, height, width, classes]);
  } finally {
    if (padded !== images) padded.dispose();
    for (const row of sums) for (const tile of row) if (tile.sum && !tile.sum.isDisposed) tile.sum.dispose();
  }
}

/**
 * Logits `[B,H,W,K]` for images of any size `[B,H,W,C]` (normalised as in training): whole-image
 * or sliding-window inference, with optional flip and multi-scale test-time augmentation (see
 * {@link InferenceOptions}). With windows, tensor memory holds one image batch's logits and one
 * window's prediction.
 */
export function inferLogits(model: InferenceModel, images: tf.Tensor4D, options: InferenceOptions = {}): tf.Tensor4D {
  const o = checkInferenceOptions(options, model.info.backbone);
  const [batch, height, width] = images.shape;
  const pass = (input: tf.Tensor4D) =>
    o.window ? slidingWindowLogits(model, input, o.window, o.stride!, o.droppedClass) : wholeImageLogits(model, input, o.droppedClass);
  const flips = o.flip ? [false, true] : [false];
  if (o.scales.length === 1 && o.scales[0] === 1 && !o.flip) return pass(images);
  let total: Float32Array | undefined;
  let classes = 0;
  for (const scale of o.scales) {
    const h = Math.max(1, Math.round(height * scale));
    const w = Math.max(1, Math.round(width * scale));
    const scaled = scale === 1 ? images : tf.image.resizeBilinear(images, [h, w], false, true);
    for (const flip of flips) {
      const input = flip ? tf.reverse(scaled, 2) : scaled;
      const logits = pass(input);
      const back = tf.tidy(() => {
        const unflipped = flip ? tf.reverse(logits, 2) : logits;
        return scale === 1 ? unflipped.clone() : resizeBilinear(unflipped, height, width);
      });
      const data = back.dataSync() as Float32Array;
      classes = back.shape[3];
      tf.dispose([back, logits, ...(input !== scaled ? [input] : [])]);
      total ??= new Float32Array(batch * height * width * classes);
      for (let i = 0; i < data.length; i++) total[i] += data[i];
    }
    if (scaled !== images) scaled.dispose();
  }
  const passes = o.scales.length * flips.length;
  for (let i = 0; i < total!.length; i++) total![i] /= passes;
  return tf.tensor4d(total!, [batch, height, width, classes]);
}

/** Class map `[B,H,W]` (int32) of {@link inferLogits}. */
export function inferClasses(model: InferenceModel, images: tf.Tensor4D, options: InferenceOptions = {}): tf.Tensor3D {
  const logits = inferLogits(model, images, options);
  const classes = tf.argMax(logits, -1) as tf.Tensor3D;
  logits.dispose();
  return classes;
}
