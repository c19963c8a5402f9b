import * as tf from '@tensorflow/tfjs-core';

/*
 * Composites for kernels that wasm runs far below XNNPACK's speed, rewritten into XNNPACK's plain
 * matrix product (no transposed operand) and its pooling.
 */

type MatMulAttrs = { transposeA: boolean; transposeB: boolean };

const size = tf.util.sizeFromShape;

/** A pooling or convolution attribute given as one number or a pair. */
export const pair = (v: number | [number, number] | undefined): [number, number] => (v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v);

/** Products with a transposed operand and no batch: wasm computes those with a plain loop. */
export function matMulApplies(a: tf.TensorInfo, b: tf.TensorInfo, attrs: tf.NamedAttrMap): boolean {
  const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
  const noBatch = (t: tf.TensorInfo) => size(t.shape.slice(0, -2)) === 1;
  return (transposeA || transposeB) && a.dtype === 'float32' && b.dtype === 'float32' && noBatch(a) && noBatch(b);
}

/**
 * `op(a) op(b)` with the transposition done first (or on the smaller side, through
 * `a^T b = (b^T a)^T`), so that the product itself has no transposed operand.
 */
export function fastMatMul(a: tf.Tensor, b: tf.Tensor, attrs: tf.NamedAttrMap): tf.Tensor {
  const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
  return tf.tidy(() => {
    const matrix = (t: tf.Tensor): tf.Tensor2D => tf.reshape(t, t.shape.slice(-2) as [number, number]);
    const a2 = matrix(a);
    const b2 = matrix(b);
    let product: tf.Tensor2D;
    if (transposeA && transposeB) {
      product = tf.transpose(tf.matMul(b2, a2)) as tf.Tensor2D;
    } else if (transposeB) {
      product = tf.matMul(a2, tf.transpose(b2));
    } else if (b2.shape[1] <= a2.shape[1]) {
      product = tf.transpose(tf.matMul(tf.transpose(b2), a2)) as tf.Tensor2D;
    } else {
      product = tf.matMul(tf.transpose(a2), b2);
    }
    const outer = a.shape.length >= b.shape.length ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
    return tf.reshape(product, [...outer, ...product.shape]);
  });
}

type ReductionAttrs = { axis: number | number[]; keepDims: boolean };

/** The axes a reduction runs over, when they are the leading ones (`[0..k-1]`), else undefined. */
function leadingAxes(shape: number[], attrs: tf.NamedAttrMap): number | undefined {
  const axes = tf.util.parseAxisParam((attrs as unknown as ReductionAttrs).axis, shape);
  const sorted = [...new Set(axes)].sort((x, y) => x - y);
  return sorted.length > 0 && sorted.every((axis, i) => axis === i) ? sorted.length : undefined;
}

/** Float reductions over the leading axes of a tensor of some size: wasm's loop is slow there. */
export function reductionApplies(x: tf.TensorInfo, attrs: tf.NamedAttrMap): boolean {
  return x.dtype === 'float32' && size(x.shape) >= 4096 && leadingAxes(x.shape, attrs) !== undefined;
}

/**
 * Sum or mean over the leading axes as one average pooling over a `[1,R,1,C]` view (XNNPACK's
 * pooling reads the input once; wasm's Sum transposes it first). The sum is the mean times R.
 */
export function fastReduction(x: tf.Tensor, attrs: tf.NamedAttrMap, kind: 'sum' | 'mean'): tf.Tensor {
  const k = leadingAxes(x.shape, attrs)!;
  const { keepDims } = attrs as unknown as ReductionAttrs;
  return tf.tidy(() => {
    const rows = size(x.shape.slice(0, k));
    const rest = x.shape.slice(k);
    const columns = size(rest);
    let mean: tf.Tensor = tf.avgPool(tf.reshape(x, [1, rows, 1, columns]) as tf.Tensor4D, [rows, 1], 1, 'valid');
    // XNNPACK clamps the pooled values, which turns NaN into -Infinity. Such columns (a read of
    // `columns` values, cheap on wasm) are reduced again the slow way, so that NaN stays NaN.
    if ((mean.dataSync() as Float32Array).includes(Number.NEGATIVE_INFINITY)) {
      mean = tf.mean(tf.transpose(tf.reshape(x, [rows, columns])), 1);
    }
    const reduced = kind === 'mean' ? mean : tf.mul(mean, rows);
    return tf.reshape(reduced, keepDims ? [...x.shape.slice(0, k).map(() => 1), ...rest] : rest);
  });
}

type PoolAttrs = { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown };

/** Max pooling whose windows do not overlap and are not padded: `kh x kw` windows, the same strides. */
export function maxPoolGradApplies(input: tf.TensorInfo, attrs: tf.NamedAttrMap): boolean {
  const { filterSize, strides, pad } = attrs as unknown as PoolAttrs;
  const [fh, fw] = pair(filterSize);
  const [sh, sw] = pair(strides);
  return input.dtype === 'float32' && pad === 'valid' && fh === sh && fw === sw;
}

/**
 * Gradient of non-overlapping max pooling: `dy` goes to the first maximum of each window in row-major
 * order, as tfjs's cpu kernel chooses it. Each position holds a rank that is highest first; where the
 * input equals its window's maximum, a max pooling of those ranks picks the first maximum. Rows and
 * columns that no window covers get zero.
 */
export function maxPoolGrad(dy: tf.Tensor, input: tf.Tensor, output: tf.Tensor, attrs: tf.NamedAttrMap): tf.Tensor {
  const { filterSize } = attrs as unknown as PoolAttrs;
  const [kh, kw] = pair(filterSize);
  const [b, h, w, c] = input.shape;
  const [, oh, ow] = output.shape;
  return tf.tidy(() => {
    const [ch, cw] = [oh * kh, ow * kw];
    const covered = ch === h && cw === w ? input : tf.slice(input, [0, 0, 0, 0], [b, ch, cw, c]);
    // Same-shape comparisons: wasm's broadcasting ones over six axes are very slow.
    const perPixel = (t: tf.Tensor) => tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [ch, cw]);
    const rank = tf.tensor(Array.from({ length: ch * cw }, (_, i) => kh * kw - (Math.floor(i / cw) % kh) * kw - ((i % cw) % kw)), [1, ch, cw, 1]);
    const ranks = tf.mul(tf.cast(tf.equal(covered, perPixel(output)), 'float32'), rank);
    const first = tf.equal(ranks, perPixel(tf.maxPool(ranks as tf.Tensor4D, [kh, kw], [kh, kw], 'valid')));
    const gradient = tf.mul(tf.cast(first, 'float32'), perPixel(dy));
    return covered === input ? gradient : tf.pad(gradient, [[0, 0], [0, h - ch], [0, w - cw], [0, 0]]);
  });
}
