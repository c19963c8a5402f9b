import type {
  BATCH_NORM_TRAINING_GRAD_KERNEL,
  BATCH_NORM_TRAINING_KERNEL,
  BatchNormTrainingAttrs,
  DILATED_CONV2D_FILTER_GRAD_KERNEL,
  DILATED_CONV2D_INPUT_GRAD_KERNEL,
  MOVING_STATISTICS_KERNEL,
  MovingStatisticsAttrs,
  RESIZE_BILINEAR_GRAD_KERNEL,
  RESIZE_BILINEAR_KERNEL,
  ResizeBilinearAttrs,
  SOFTMAX_LOSSES_GRAD_KERNEL,
  SOFTMAX_LOSSES_KERNEL,
  SoftmaxLossesAttrs,
  SGD_UPDATE_KERNEL,
  SgdUpdateAttrs,
} from '@dropclass/core';
import { type KernelOverride, OVERRIDE_PRIORITY, registerKernelOverrides } from '@dropclass/tfjs-wasm-train';
import * as tf from '@tensorflow/tfjs-core';
import { type NativeAddon, RowOp } from './addon.js';

/** What the kernels use of tfjs-backend-wasm's backend: where a tensor's data lies in its heap, and outputs. */
interface WasmBackend {
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

type Pair = [number, number];
type ConvAttrs = {
  strides: number | Pair;
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW' | 'channelsLast' | 'channelsFirst';
  dilations?: number | Pair;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape?: number[];
  filterShape?: number[];
  activation?: string;
};

let heapView: Float32Array | undefined;

/** The heap as floats; a new view only after the memory has grown. */
function heap(backend: WasmBackend): Float32Array {
  const buffer = backend.wasm.HEAPU8.buffer;
  if (heapView?.buffer !== buffer) heapView = new Float32Array(buffer);
  return heapView;
}

/** A tensor's offset in the heap, in floats. */
function at(backend: WasmBackend, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId)!.memoryOffset / 4;
}

const size = tf.util.sizeFromShape;
const float32 = (...infos: (tf.TensorInfo | undefined)[]) => infos.every((t) => t === undefined || t.dtype === 'float32');
const channelsLast = (a: ConvAttrs) => a.dataFormat === undefined || a.dataFormat === 'NHWC' || a.dataFormat === 'channelsLast';

/** The 15 numbers the addon takes for a convolution, or undefined when it does not run this one. */
function geometry(inputShape: number[], filterShape: number[], a: ConvAttrs, outShape?: number[]): number[] | undefined {
  if (!channelsLast(a) || inputShape.length !== 4 || filterShape.length !== 4 || inputShape[3] !== filterShape[2]) return undefined;
  const c = tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
  );
  return outShape && !tf.util.arraysEqual(outShape, c.outShape) ? undefined : layout(c);
}

/** A convolution's or pooling's geometry in the order the addon takes it (15 numbers). */
function layout(c: tf.backend_util.Conv2DInfo): number[] {
  return [
    c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels, c.filterHeight, c.filterWidth,
    c.strideHeight, c.strideWidth, c.dilationHeight, c.dilationWidth, c.padInfo.top, c.padInfo.left,
  ];
}

/** A native kernel: `run` returns the output, or undefined to pass the call on (to the next override, then wasm's own kernel). */
type Run = (addon: NativeAddon, backend: WasmBackend, inputs: tf.NamedTensorInfoMap, attrs: ConvAttrs & tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[] | undefined;

const conv2d: Run = (addon, backend, { x, filter, bias, preluActivationWeights }, a) => {
  const activation = a.activation ?? 'linear';
  if (!float32(x, filter, bias) || preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return undefined;
  const g = geometry(x!.shape, filter!.shape, a);
  if (!g || (bias && size(bias.shape) !== g[6])) return undefined;
  const out = backend.makeOutput([g[0], g[4], g[5], g[6]], 'float32');
  if (size(out.shape) > 0) {
    addon.conv2d(heap(backend), at(backend, x!), at(backend, filter!), bias ? at(backend, bias) : -1, at(backend, out), activation === 'relu' ? 1 : 0, ...g);
  }
  return out;
};

const conv2dInputGradient: Run = (addon, backend, { dy, filter }, a) => {
  if (!float32(dy, filter) || !a.inputShape) return undefined;
  const g = geometry(a.inputShape, filter!.shape, a, dy!.shape);
  if (!g) return undefined;
  const out = backend.makeOutput(a.inputShape, 'float32');
  if (size(out.shape) > 0) addon.conv2dInputGradient(heap(backend), at(backend, dy!), at(backend, filter!), at(backend, out), ...g);
  return out;
};

const conv2dFilterGradient: Run = (addon, backend, { x, dy }, a) => {
  if (!float32(x, dy) || !a.filterShape) return undefined;
  const g = geometry(x!.shape, a.filterShape, a, dy!.shape);
  if (!g) return undefined;
  const out = backend.makeOutput(a.filterShape, 'float32');
  if (size(out.shape) > 0) addon.conv2dFilterGradient(heap(backend), at(backend, x!), at(backend, dy!), at(backend, out), ...g);
  return out;
};

const batchMatMul: Run = (addon, backend, { a, b }, attrs) => {
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  if (!float32(a, b) || a!.shape.length < 2 || b!.shape.length < 2) return undefined;
  const outerA = a!.shape.slice(0, -2);
  const outerB = b!.shape.slice(0, -2);
  const [batchA, batchB] = [size(outerA), size(outerB)];
  // Batches that match one to one, or one operand shared by all: other broadcasts stay with the stock kernel.
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
  if (batchA === batchB && batchA > 1 && !tf.util.arraysEqual(outerA, outerB)) return undefined;
  const [ra, ca] = a!.shape.slice(-2);
  const [rb, cb] = b!.shape.slice(-2);
  const [m, k] = transposeA ? [ca, ra] : [ra, ca];
  const [k2, n] = transposeB ? [cb, rb] : [rb, cb];
  if (k !== k2) return undefined;
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput([...outer, m, n], 'float32');
  if (batch * m * n > 0) {
    addon.matMul(heap(backend), at(backend, a!), at(backend, b!), at(backend, out), batch, m, n, k, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n, transposeA ? 1 : 0, transposeB ? 1 : 0);
  }
  return out;
};

const batchNorm: Run = (addon, backend, { x, mean, variance, offset, scale }, attrs) => {
  const channels = x!.shape[x!.shape.length - 1] ?? 1;
  const fits = (t: tf.TensorInfo | undefined) => t === undefined || size(t.shape) === channels;
  if (!float32(x, mean, variance, offset, scale) || x!.shape.length < 1 || !mean || !variance || ![mean, variance, offset, scale].every(fits)) return undefined;
  const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
  const out = backend.makeOutput(x!.shape, 'float32');
  const rows = size(x!.shape) / channels;
  if (rows > 0) {
    const optional = (t: tf.TensorInfo | undefined) => (t ? at(backend, t) : -1);
    addon.batchNorm(heap(backend), at(backend, x!), at(backend, mean), at(backend, variance), optional(offset), optional(scale), at(backend, out), rows, channels, varianceEpsilon);
  }
  return out;
};

/** Sum or Mean over the leading axes (`[0..k-1]`): the rows of a matrix summed. */
const reduction =
  (mean: boolean): Run =>
  (addon, backend, { x }, attrs) => {
    if (!float32(x) || x!.shape.length === 0) return undefined;
    const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
    const axes = [...new Set(tf.util.parseAxisParam(axis, x!.shape))].sort((p, q) => p - q);
    if (axes.length === 0 || !axes.every((a, i) => a === i)) return undefined;
    const k = axes.length;
    const rest = x!.shape.slice(k);
    const out = backend.makeOutput(keepDims ? [...x!.shape.slice(0, k).map(() => 1), ...rest] : rest, 'float32');
    const columns = size(rest);
    if (columns > 0) addon.rows(heap(backend), at(backend, x!), at(backend, out), size(x!.shape.slice(0, k)), columns, mean ? RowOp.Mean : RowOp.Sum);
    return out;
  };

/** Max over the last axis, or softmax along it. */
const rowWise =
  (softmax: boolean): Run =>
  (addon, backend, { x, logits }, attrs) => {
    const input = softmax ? logits : x;
    if (!float32(input) || input!.shape.length === 0) return undefined;
    const rank = input!.shape.length;
    const axes = softmax ? [(attrs as unknown as tf.SoftmaxAttrs).dim] : tf.util.parseAxisParam((attrs as unknown as tf.MaxAttrs).reductionIndices, input!.shape);
    if (axes.length !== 1 || (axes[0] !== rank - 1 && axes[0] !== -1)) return undefined;
    const columns = input!.shape[rank - 1];
    const rows = size(input!.shape.slice(0, -1));
    if (columns === 0) return undefined;
    const keepDims = !softmax && (attrs as unknown as tf.MaxAttrs).keepDims;
    const out = backend.makeOutput(softmax ? input!.shape : keepDims ? [...input!.shape.slice(0, -1), 1] : input!.shape.slice(0, -1), 'float32');
    if (rows > 0) addon.rows(heap(backend), at(backend, input!), at(backend, out), rows, columns, softmax ? RowOp.Softmax : RowOp.Max);
    return out;
  };

const concat: Run = (addon, backend, inputs, attrs) => {
  const tensors = Object.values(inputs) as tf.TensorInfo[];
  if (tensors.length === 0 || !tensors.every((t) => t.dtype === 'float32')) return undefined;
  const rank = tensors[0].shape.length;
  if (rank === 0) return undefined;
  const axis = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, tensors[0].shape)[0];
  const shape = tf.backend_util.computeOutShape(tensors.map((t) => t.shape), axis);
  const out = backend.makeOutput(shape, 'float32');
  const outer = size(shape.slice(0, axis));
  const width = size(shape.slice(axis));
  const memory = heap(backend);
  let column = 0;
  for (const t of tensors) {
    const inner = size(t.shape.slice(axis));
    if (inner > 0 && outer > 0) addon.copyRows(memory, at(backend, t), inner, at(backend, out) + column, width, outer, inner);
    column += inner;
  }
  return out;
};

const splitV: Run = (addon, backend, { x }, attrs) => {
  if (!float32(x) || x!.shape.length === 0) return undefined;
  const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
  const dim = tf.util.parseAxisParam(axis, x!.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x!, numOrSizeSplits, dim);
  const outer = size(x!.shape.slice(0, dim));
  const width = size(x!.shape.slice(dim));
  const perRow = size(x!.shape.slice(dim + 1));
  const outs = sizes.map((s) => backend.makeOutput(x!.shape.map((d, i) => (i === dim ? s : d)), 'float32'));
  const memory = heap(backend);
  let column = 0;
  outs.forEach((out, i) => {
    const inner = sizes[i] * perRow;
    if (inner > 0 && outer > 0) addon.copyRows(memory, at(backend, x!) + column, width, at(backend, out), inner, outer, inner);
    column += inner;
  });
  return outs;
};

/**
 * Space-to-batch and batch-to-space of NHWC tensors with a 2-D block (the dilated convolutions of
 * DeepLab's atrous layers): each (block offset, image, row) is one strided copy of whole pixels,
 * where the stock kernels move every value through a 6-D reshape and transpose.
 */
interface BlockGeometry {
  batch: number;
  channels: number;
  block: Pair;
  /** Leading and trailing padding (space-to-batch) or crops (batch-to-space) of height and width. */
  edges: [Pair, Pair];
}

/** `x`'s geometry; `ofBlocks`: `x` holds the blocks (batch-to-space), bh * bw of them per image. */
function blockGeometry(x: tf.TensorInfo | undefined, blockShape: number[], edges: number[][], ofBlocks: boolean): BlockGeometry | undefined {
  if (!float32(x) || x!.shape.length !== 4 || blockShape.length !== 2 || edges.length !== 2) return undefined;
  const [bh, bw] = blockShape;
  const batch = ofBlocks ? x!.shape[0] / (bh * bw) : x!.shape[0];
  if (!Number.isInteger(batch)) return undefined;
  return { batch, channels: x!.shape[3], block: [bh, bw], edges: [edges[0] as Pair, edges[1] as Pair] };
}

/** The first `k` with `k * step + offset >= lower`, at least 0. */
const firstAtLeast = (lower: number, step: number, offset: number) => Math.max(0, Math.ceil((lower - offset) / step));

/**
 * Calls `copy` once per (block offset i j, image b, block row y) that lands inside the space side:
 * the block-side pixels `k0..k1` of that row (at `blockAt`, `c` floats apart) go to the space-side
 * pixels `k * bw + j - left` of row `y * bh + i - top` (at `spaceAt`, `bw * c` floats apart).
 */
function eachBlockRow(
  g: BlockGeometry,
  blockSize: Pair,
  spaceSize: Pair,
  copy: (blockAt: number, spaceAt: number, count: number) => void,
): void {
  const [[top], [left]] = g.edges;
  const [bh, bw] = g.block;
  const [h, w] = blockSize;
  const [height, width] = spaceSize;
  const c = g.channels;
  if (c === 0) return;
  for (let i = 0; i < bh; i++)
    for (let j = 0; j < bw; j++) {
      // block column k is space column k * bw + j - left: the columns that land inside the space side
      const [k0, k1] = [firstAtLeast(0, bw, j - left), Math.min(w, firstAtLeast(width, bw, j - left))];
      if (k1 <= k0) continue;
      for (let b = 0; b < g.batch; b++)
        for (let y = 0; y < h; y++) {
          const row = y * bh + i - top;
          if (row < 0 || row >= height) continue;
          copy(((((i * bw + j) * g.batch + b) * h + y) * w + k0) * c, ((b * height + row) * width + k0 * bw + j - left) * c, k1 - k0);
        }
    }
}

const spaceToBatch: Run = (addon, backend, { x }, attrs) => {
  const { blockShape, paddings } = attrs as unknown as tf.SpaceToBatchNDAttrs;
  const g = blockGeometry(x, blockShape, paddings, false);
  if (!g) return undefined;
  const [, height, width, c] = x!.shape;
  const [[top, bottom], [left, right]] = g.edges;
  const [bh, bw] = g.block;
  const [h, w] = [(height + top + bottom) / bh, (width + left + right) / bw];
  if (!Number.isInteger(h) || !Number.isInteger(w)) return undefined;
  const out = backend.makeOutput([bh * bw * g.batch, h, w, c], 'float32');
  const memory = heap(backend);
  const [src, dst] = [at(backend, x!), at(backend, out)];
  // Padding reads as zeros: the output starts as zeros, and only the pixels of the input are copied.
  memory.fill(0, dst, dst + size(out.shape));
  eachBlockRow(g, [h, w], [height, width], (blockAt, spaceAt, count) => addon.copyRows(memory, src + spaceAt, bw * c, dst + blockAt, c, count, c));
  return out;
};

const batchToSpace: Run = (addon, backend, { x }, attrs) => {
  const { blockShape, crops } = attrs as unknown as tf.BatchToSpaceNDAttrs;
  const g = blockGeometry(x, blockShape, crops, true);
  if (!g) return undefined;
  const [, h, w, c] = x!.shape;
  const [[top, bottom], [left, right]] = g.edges;
  const [bh, bw] = g.block;
  const [height, width] = [h * bh - top - bottom, w * bw - left - right];
  if (height < 0 || width < 0) return undefined;
  const out = backend.makeOutput([g.batch, height, width, c], 'float32');
  const memory = heap(backend);
  const [src, dst] = [at(backend, x!), at(backend, out)];
  // Every output pixel comes from exactly one input pixel: no fill needed.
  eachBlockRow(g, [h, w], [height, width], (blockAt, spaceAt, count) => addon.copyRows(memory, src + blockAt, c, dst + spaceAt, bw * c, count, c));
  return out;
};

/**
 * A slice of a float32 tensor as strided copies of its innermost runs: one copy of rows for a slice
 * along the last axes (channels, as tfjs-layers' concatenation takes its gradient apart; a crop), one per index of the
 * outer axes that are cut too.
 */
const slice: Run = (addon, backend, { x }, attrs) => {
  if (!float32(x) || x!.shape.length === 0) return undefined;
  const { begin, size: sizes } = attrs as unknown as tf.SliceAttrs;
  const [starts, counts] = tf.slice_util.parseSliceParams(x!, begin, sizes);
  const shape = x!.shape;
  const out = backend.makeOutput(counts, 'float32');
  if (size(counts) === 0) return out;
  // The innermost axis that is cut: everything inside it is copied whole, as one run.
  let d = shape.length - 1;
  while (d > 0 && starts[d] === 0 && counts[d] === shape[d]) d--;
  const inner = size(shape.slice(d + 1));
  const width = counts[d] * inner;
  const srcStride = shape[d] * inner;
  // Axes outside d that are whole merge into the rows of one copy; the others are walked.
  let r = d - 1;
  let rows = 1;
  while (r >= 0 && starts[r] === 0 && counts[r] === shape[r]) rows *= shape[r--];
  const outerAxes = shape.slice(0, r + 1);
  const memory = heap(backend);
  const [src, dst] = [at(backend, x!) + starts[d] * inner, at(backend, out)];
  const strides = tf.util.computeStrides(shape);
  const index = new Array<number>(outerAxes.length).fill(0);
  const copies = size(counts.slice(0, r + 1));
  for (let n = 0, done = 0; n < copies; n++, done += rows * width) {
    let offset = 0;
    for (let a = 0; a < index.length; a++) offset += (starts[a] + index[a]) * strides[a];
    addon.copyRows(memory, src + offset, srcStride, dst + done, width, rows, width);
    for (let a = index.length - 1; a >= 0 && ++index[a] === counts[a]; a--) index[a] = 0;
  }
  return out;
};

/** The geometry of a max pooling (or its gradient) over `input`. */
function poolInfo(input: tf.TensorInfo, attrs: tf.NamedAttrMap): tf.backend_util.Conv2DInfo {
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolAttrs;
  return tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
}

/** Max pooling, NHWC: wasm's own is several times slower on a U-Net's large, few-channel maps. */
const maxPool: Run = (addon, backend, { x }, attrs) => {
  if (!float32(x) || x!.shape.length !== 4) return undefined;
  const c = poolInfo(x!, attrs);
  const out = backend.makeOutput(c.outShape, 'float32');
  if (size(c.outShape) > 0) addon.maxPool(heap(backend), at(backend, x!), at(backend, out), ...layout(c));
  return out;
};

const maxPoolGrad: Run = (addon, backend, { dy, input }, attrs) => {
  if (!float32(dy, input) || input!.shape.length !== 4) return undefined;
  const c = poolInfo(input!, attrs);
  if (!tf.util.arraysEqual(c.outShape, dy!.shape)) return undefined;
  const out = backend.makeOutput(input!.shape, 'float32');
  if (size(input!.shape) > 0) {
    // A pooling's geometry keeps the channels (outChannels = inChannels).
    addon.maxPoolGradient(heap(backend), at(backend, input!), at(backend, dy!), at(backend, out), ...layout(c));
  }
  return out;
};

/**
 * Fused kernels that `@dropclass/core` runs when a backend registers them, by the names and with the
 * attributes core defines (imported as types only: the build fails if they part): batch norm in
 * training (`batchNormInTraining`; core's `BATCH_NORM_TRAINING_KERNEL` and
 * `BATCH_NORM_TRAINING_GRAD_KERNEL` say what they compute) and the objective's softmax terms
 * (`softmaxLosses`; `SOFTMAX_LOSSES_KERNEL`, `SOFTMAX_LOSSES_GRAD_KERNEL`), one parameter's SGD
 * step (`sgdUpdate`; `SGD_UPDATE_KERNEL`), a batch norm's moving statistics
 * (`updateMovingStatistics`; `MOVING_STATISTICS_KERNEL`), bilinear resizing both ways
 * (`RESIZE_BILINEAR_KERNEL`, `RESIZE_BILINEAR_GRAD_KERNEL`) and the gradients of a dilated
 * convolution (`dilatedConv2d`; `DILATED_CONV2D_INPUT_GRAD_KERNEL` and
 * `DILATED_CONV2D_FILTER_GRAD_KERNEL`: tfjs's gradient kernels' attributes with `dilations`, which
 * the convolution kernels here take as they are).
 */
const BATCH_NORM_TRAINING: typeof BATCH_NORM_TRAINING_KERNEL = 'DropClassBatchNormTraining';
const BATCH_NORM_TRAINING_GRAD: typeof BATCH_NORM_TRAINING_GRAD_KERNEL = 'DropClassBatchNormTrainingGrad';
const SOFTMAX_LOSSES: typeof SOFTMAX_LOSSES_KERNEL = 'DropClassSoftmaxLosses';
const SOFTMAX_LOSSES_GRAD: typeof SOFTMAX_LOSSES_GRAD_KERNEL = 'DropClassSoftmaxLossesGrad';
const SGD_UPDATE: typeof SGD_UPDATE_KERNEL = 'DropClassSgdUpdate';
const MOVING_STATISTICS: typeof MOVING_STATISTICS_KERNEL = 'DropClassMovingStatistics';
const DILATED_CONV2D_INPUT_GRAD: typeof DILATED_CONV2D_INPUT_GRAD_KERNEL = 'DropClassDilatedConv2DBackpropInput';
const DILATED_CONV2D_FILTER_GRAD: typeof DILATED_CONV2D_FILTER_GRAD_KERNEL = 'DropClassDilatedConv2DBackpropFilter';
const RESIZE_BILINEAR: typeof RESIZE_BILINEAR_KERNEL = 'DropClassResizeBilinear';
const RESIZE_BILINEAR_GRAD: typeof RESIZE_BILINEAR_GRAD_KERNEL = 'DropClassResizeBilinearGrad';

/** Rows and channels of a float32 `[rows, channels]` input with float32 `[channels]` parameters, or undefined. */
function normShape(x: tf.TensorInfo | undefined, ...perChannel: (tf.TensorInfo | undefined)[]): [number, number] | undefined {
  if (!float32(x, ...perChannel) || x!.shape.length !== 2 || size(x!.shape) === 0) return undefined;
  const [rows, channels] = x!.shape;
  return perChannel.every((t) => t && size(t.shape) === channels) ? [rows, channels] : undefined;
}

const batchNormTraining: Run = (addon, backend, { x, gamma, beta }, attrs) => {
  const { epsilon, relu } = attrs as unknown as BatchNormTrainingAttrs;
  const shape = normShape(x, gamma, beta);
  if (!shape) return undefined;
  const y = backend.makeOutput(shape, 'float32');
  const mean = backend.makeOutput([shape[1]], 'float32');
  const variance = backend.makeOutput([shape[1]], 'float32');
  addon.batchNormTraining(heap(backend), at(backend, x!), at(backend, gamma!), at(backend, beta!), at(backend, y), at(backend, mean), at(backend, variance), ...shape, epsilon, relu ? 1 : 0);
  return [y, mean, variance];
};

const batchNormTrainingGradient: Run = (addon, backend, { x, dy, gamma, mean, variance, y }, attrs) => {
  const { epsilon, relu } = attrs as unknown as BatchNormTrainingAttrs;
  const shape = normShape(x, gamma, mean, variance);
  if (!shape || !float32(dy, y) || !tf.util.arraysEqual(dy!.shape, shape) || (relu && (!y || !tf.util.arraysEqual(y.shape, shape)))) return undefined;
  const dx = backend.makeOutput(shape, 'float32');
  const dGamma = backend.makeOutput([shape[1]], 'float32');
  const dBeta = backend.makeOutput([shape[1]], 'float32');
  addon.batchNormTrainingGradient(
    heap(backend), at(backend, x!), at(backend, dy!), at(backend, gamma!), at(backend, mean!), at(backend, variance!), relu ? at(backend, y!) : -1,
    at(backend, dx), at(backend, dGamma), at(backend, dBeta), ...shape, epsilon,
  );
  return [dx, dGamma, dBeta];
};

/** Rows and classes of `[rows, classes]` float32 logits with optional int32 labels `[rows]`, or undefined. */
function lossShape(values: tf.TensorInfo | undefined, labels: tf.TensorInfo | undefined, a: SoftmaxLossesAttrs): [number, number] | undefined {
  if (!float32(values) || values!.shape.length !== 2) return undefined;
  const [rows, classes] = values!.shape;
  if (labels && (labels.dtype !== 'int32' || size(labels.shape) !== rows)) return undefined;
  return a.suppressedClass < classes ? [rows, classes] : undefined;
}

const softmaxLosses: Run = (addon, backend, { logits, labels }, attrs) => {
  const a = attrs as unknown as SoftmaxLossesAttrs;
  const shape = lossShape(logits, labels, a);
  if (!shape) return undefined;
  const losses = backend.makeOutput([2], 'float32');
  const p = backend.makeOutput(shape, 'float32');
  const count = backend.makeOutput([1], 'float32');
  addon.softmaxLosses(heap(backend), at(backend, logits!), labels ? at(backend, labels) : -1, at(backend, losses), at(backend, p), at(backend, count), ...shape, a.ignoreIndex, a.excludedClass, a.suppressedClass);
  return [losses, p, count];
};

const softmaxLossesGradient: Run = (addon, backend, { probabilities, labels, count, dy }, attrs) => {
  const a = attrs as unknown as SoftmaxLossesAttrs;
  const shape = lossShape(probabilities, labels, a);
  if (!shape || !float32(count, dy) || size(count!.shape) !== 1 || size(dy!.shape) !== 2) return undefined;
  const dx = backend.makeOutput(shape, 'float32');
  addon.softmaxLossesGradient(heap(backend), at(backend, probabilities!), labels ? at(backend, labels) : -1, at(backend, count!), at(backend, dy!), at(backend, dx), ...shape, a.ignoreIndex, a.excludedClass, a.suppressedClass);
  return dx;
};

const sgdUpdate: Run = (addon, backend, { weight, gradient, velocity }, attrs) => {
  const a = attrs as unknown as SgdUpdateAttrs;
  if (!float32(weight, gradient, velocity) || !tf.util.arraysEqual(weight!.shape, gradient!.shape) || (velocity && !tf.util.arraysEqual(weight!.shape, velocity.shape))) return undefined;
  const w = backend.makeOutput(weight!.shape, 'float32');
  const v = backend.makeOutput(weight!.shape, 'float32');
  addon.sgdUpdate(heap(backend), at(backend, weight!), at(backend, gradient!), velocity ? at(backend, velocity) : -1, at(backend, w), at(backend, v), size(weight!.shape), a.learningRate, a.momentum, a.weightDecay);
  return [w, v];
};

/**
 * Both moving statistics of a batch norm, computed here in JavaScript on the heap: a few hundred
 * values, less work than a call into the addon. Each operation is rounded to float32, as tfjs ops
 * round it.
 */
const movingStatistics: Run = (_addon, backend, { mean, variance, batchMean, batchVariance }, attrs) => {
  const a = attrs as unknown as MovingStatisticsAttrs;
  if (!float32(mean, variance, batchMean, batchVariance)) return undefined;
  const n = size(mean!.shape);
  if (![variance, batchMean, batchVariance].every((t) => t && size(t.shape) === n)) return undefined;
  const newMean = backend.makeOutput(mean!.shape, 'float32');
  const newVariance = backend.makeOutput(variance!.shape, 'float32');
  const h = heap(backend);
  const [m, v, bm, bv, nm, nv] = [mean!, variance!, batchMean!, batchVariance!, newMean, newVariance].map((t) => at(backend, t));
  const f = Math.fround;
  const w = f(a.newBatchWeight);
  const unbiasing = f(a.unbiasing);
  for (let i = 0; i < n; i++) {
    h[nm + i] = f(h[m + i] + f(f(h[bm + i] - h[m + i]) * w));
    h[nv + i] = f(h[v + i] + f(f(f(h[bv + i] * unbiasing) - h[v + i]) * w));
  }
  return [newMean, newVariance];
};

/**
 * A float32 tensor plus a vector along its last axis, either way round (a bias): wasm broadcasts
 * such a sum value by value, several times slower than the addon. Other sums go on to wasm.
 */
const addRowVector: Run = (addon, backend, { a, b }) => {
  if (!float32(a, b) || !a || !b) return undefined;
  const [matrix, vector] = size(a.shape) >= size(b.shape) ? [a, b] : [b, a];
  const columns = matrix.shape[matrix.shape.length - 1];
  const rows = size(matrix.shape) / Math.max(1, columns);
  const isRowVector = vector.shape.length >= 1 && vector.shape.length <= matrix.shape.length && vector.shape.every((d, i) => (i === vector.shape.length - 1 ? d === columns : d === 1));
  if (!isRowVector || rows < 2 || columns === 0) return undefined;
  const out = backend.makeOutput(matrix.shape, 'float32');
  addon.addRowVector(heap(backend), at(backend, matrix), at(backend, vector), at(backend, out), rows, columns);
  return out;
};

/**
 * Bilinear resizing of a float32 `[B, h, w, C]` tensor to the attributes' size, or (`gradient`) its
 * gradient from `[B, H, W, C]` back to the attributes' size.
 */
const resizeBilinear =
  (gradient: boolean): Run =>
  (addon, backend, { x, dy }, attrs) => {
    const { height, width } = attrs as unknown as ResizeBilinearAttrs;
    const from = gradient ? dy : x;
    if (!from || !float32(from) || from.shape.length !== 4 || !(height >= 1 && width >= 1)) return undefined;
    const [batch, h, w, channels] = from.shape;
    const out = backend.makeOutput([batch, height, width, channels], 'float32');
    // The addon takes the input's size, then the output's: for the gradient, the attributes' and dy's.
    const sizes = gradient ? [height, width, channels, h, w] : [h, w, channels, height, width];
    if (size(out.shape) > 0) addon.resizeBilinear(heap(backend), at(backend, from), at(backend, out), batch, ...(sizes as [number, number, number, number, number]), gradient ? 1 : 0);
    return out;
  };

/** The kernels the addon runs on the wasm backend, by tfjs kernel name. */
export const NATIVE_KERNELS: ReadonlyMap<string, Run> = new Map([
  [tf.Conv2D, conv2d],
  [tf.FusedConv2D, conv2d],
  [tf.Conv2DBackpropInput, conv2dInputGradient],
  [tf.Conv2DBackpropFilter, conv2dFilterGradient],
  [DILATED_CONV2D_INPUT_GRAD, conv2dInputGradient],
  [DILATED_CONV2D_FILTER_GRAD, conv2dFilterGradient],
  [tf.BatchMatMul, batchMatMul],
  [tf.Add, addRowVector],
  [tf.FusedBatchNorm, batchNorm],
  [tf.Sum, reduction(false)],
  [tf.Mean, reduction(true)],
  [tf.Max, rowWise(false)],
  [tf.Softmax, rowWise(true)],
  [tf.Concat, concat],
  [tf.SplitV, splitV],
  [tf.MaxPool, maxPool],
  [tf.MaxPoolGrad, maxPoolGrad],
  [tf.SpaceToBatchND, spaceToBatch],
  [tf.Slice, slice],
  [tf.BatchToSpaceND, batchToSpace],
  [BATCH_NORM_TRAINING, batchNormTraining],
  [BATCH_NORM_TRAINING_GRAD, batchNormTrainingGradient],
  [SOFTMAX_LOSSES, softmaxLosses],
  [SOFTMAX_LOSSES_GRAD, softmaxLossesGradient],
  [SGD_UPDATE, sgdUpdate],
  [MOVING_STATISTICS, movingStatistics],
  [RESIZE_BILINEAR, resizeBilinear(false)],
  [RESIZE_BILINEAR_GRAD, resizeBilinear(true)],
]);

/** The attributes of a call that has none (one object for every such call). */
const NO_ATTRS: tf.NamedAttrMap = Object.freeze({});

/** Who registers the native kernels (`KernelOverride.source`). */
export const NATIVE_SOURCE = '@dropclass/native-kernels';

/**
 * The native kernels as overrides of `@dropclass/tfjs-wasm-train` on the wasm backend, at `priority`
 * (`OVERRIDE_PRIORITY.native`): each call the addon runs goes to it; it declines the others (before
 * making any output), which go on to the next override or wasm's own kernel.
 */
export function nativeKernelOverrides(addon: NativeAddon, priority: number): KernelOverride[] {
  return [...NATIVE_KERNELS].map(([kernelName, run]) => ({
    kernelName,
    backendName: 'wasm',
    source: NATIVE_SOURCE,
    priority,
    run: (call) => run(addon, call.backend as unknown as WasmBackend, call.inputs, (call.attrs ?? NO_ATTRS) as ConvAttrs & tf.NamedAttrMap),
  }));
}

/** Registers the addon's kernels as overrides on wasm, at `OVERRIDE_PRIORITY.native`; returns their names. */
export function registerOnWasm(addon: NativeAddon): string[] {
  registerKernelOverrides(nativeKernelOverrides(addon, OVERRIDE_PRIORITY.native));
  return [...NATIVE_KERNELS.keys()];
}
