import * as tf from '@tensorflow/tfjs-core';

type Pair = [number, number];
type PadInfo = { top: number; left: number };

/** Pads (positive) or crops (negative) one spatial axis (1 = height, 2 = width) of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, axis: 1 | 2, before: number, after: number): tf.Tensor4D {
  let y = x;
  if (before < 0 || after < 0) {
    const begin = [0, 0, 0, 0];
    const size = [...y.shape] as number[];
    begin[axis] = Math.max(0, -before);
    size[axis] = y.shape[axis] - Math.max(0, -before) - Math.max(0, -after);
    y = tf.slice(y, begin, size);
  }
  if (before > 0 || after > 0) {
    const paddings: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
    paddings[axis] = [Math.max(0, before), Math.max(0, after)];
    y = tf.pad(y, paddings);
  }
  return y;
}

/** Inserts `stride - 1` zeros between neighbouring pixels: `[B,h,w,C]` -> `[B,(h-1)s+1,(w-1)s+1,C]`. */
function upsampleWithZeros(dy: tf.Tensor4D, [sh, sw]: Pair): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [b, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [b, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.slice(tf.reshape(spread, [b, h * sh, w * sw, c]) as tf.Tensor4D, [0, 0, 0, 0], [b, (h - 1) * sh + 1, (w - 1) * sw + 1, c]);
}

/** Rows and columns (top, bottom, left, right) that frame the strided-up output gradient in the input's frame. */
function frame(upShape: number[], inputShape: number[], filterSize: Pair, dilations: Pair, pad: PadInfo): [number, number, number, number] {
  const [kh, kw] = filterSize;
  const top = (kh - 1) * dilations[0] - pad.top;
  const left = (kw - 1) * dilations[1] - pad.left;
  const bottom = inputShape[1] + (kh - 1) * dilations[0] - top - upShape[1];
  const right = inputShape[2] + (kw - 1) * dilations[1] - left - upShape[2];
  return [top, bottom, left, right];
}

/**
 * Brings the output gradient into the input's frame for a stride-1 correlation with the flipped
 * kernel: zeros between strided pixels, then padding so the result has the input's size.
 */
function framedOutputGradient(dy: tf.Tensor4D, inputShape: number[], filterSize: Pair, strides: Pair, dilations: Pair, pad: PadInfo): tf.Tensor4D {
  const up = upsampleWithZeros(dy, strides);
  const [top, bottom, left, right] = frame(up.shape, inputShape, filterSize, dilations, pad);
  return padOrCrop(padOrCrop(up, 1, top, bottom), 2, left, right);
}

/** Explicit padding of a convolution for these (top, bottom, left, right), when none is negative (a crop). */
function explicitPadding([top, bottom, left, right]: number[]): tf.backend_util.ExplicitPadding | undefined {
  return Math.min(top, bottom, left, right) < 0 ? undefined : [[0, 0], [top, bottom], [left, right], [0, 0]];
}

/** Below this many values per tap, the taps are reversed by a gather; from it on, by a product. */
export const GATHER_TAPS_BELOW = 4096;

/**
 * The kernel turned by 180 degrees (both spatial axes reversed): its taps in reverse order. Small
 * kernels: a gather of its `[taps, a*b]` rows; large ones: one product with a permutation matrix
 * (exact: every output is one input times 1 plus zeros). On wasm, the product's fixed cost (XNNPACK
 * packs its operand at every call) is several times the gather's for small kernels, and wasm's
 * gather (like its Reverse) copies value by value, several times slower than the product for large ones.
 */
function rotated(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, a, b] = filter.shape;
  const taps = kh * kw;
  if (taps === 1) return filter;
  if (a * b < GATHER_TAPS_BELOW) {
    const reversed = tf.tensor1d(Array.from({ length: taps }, (_, k) => taps - 1 - k), 'int32');
    return tf.reshape(tf.gather(tf.reshape(filter, [taps, a * b]), reversed), filter.shape);
  }
  const reversal = tf.tensor2d(Array.from({ length: taps * taps }, (_, k) => (Math.floor(k / taps) + (k % taps) === taps - 1 ? 1 : 0)), [taps, taps]);
  return tf.reshape(tf.matMul(reversal, tf.reshape(filter, [taps, a * b])), filter.shape);
}

/**
 * Input gradient of a conv2d as a forward stride-1 conv2d (which wasm runs through XNNPACK): the
 * framed output gradient correlated with the spatially flipped kernel, in and out channels swapped.
 */
export function conv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: number[],
  strides: Pair,
  dilations: Pair,
  pad: PadInfo,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filter.shape;
    const flipped = tf.transpose(rotated(filter), [0, 1, 3, 2]) as tf.Tensor4D;
    // Stride 1 and a frame of padding only: the convolution pads itself, without a padded copy of dy.
    const padding = strides[0] === 1 && strides[1] === 1 ? explicitPadding(frame(dy.shape, inputShape, [kh, kw], dilations, pad)) : undefined;
    if (padding) return tf.conv2d(dy, flipped, 1, padding, 'NHWC', dilations);
    const framed = framedOutputGradient(dy, inputShape, [kh, kw], strides, dilations, pad);
    return tf.conv2d(framed, flipped, 1, 'valid', 'NHWC', dilations);
  });
}

/** Rows and columns (top, bottom, left, right) to add to the input (negative: remove) for exactly those the convolution reads. */
function inputFrame(x: tf.Tensor4D, filterSize: Pair, outSize: Pair, strides: Pair, dilations: Pair, pad: PadInfo): [number, number, number, number] {
  const needH = (outSize[0] - 1) * strides[0] + (filterSize[0] - 1) * dilations[0] + 1;
  const needW = (outSize[1] - 1) * strides[1] + (filterSize[1] - 1) * dilations[1] + 1;
  return [pad.top, needH - x.shape[1] - pad.top, pad.left, needW - x.shape[2] - pad.left];
}

/** The input padded (or cropped) to exactly the rows and columns the convolution reads. */
function paddedInput(x: tf.Tensor4D, filterSize: Pair, outSize: Pair, strides: Pair, dilations: Pair, pad: PadInfo): tf.Tensor4D {
  const [top, bottom, left, right] = inputFrame(x, filterSize, outSize, strides, dilations, pad);
  return padOrCrop(padOrCrop(x, 1, top, bottom), 2, left, right);
}

/**
 * Patches of the padded input seen by each kernel tap, concatenated on channels (im2col):
 * `[B*oh*ow, kh*kw*Cin]`, column order (tap row, tap column, channel).
 */
function im2col(x: tf.Tensor4D, filterSize: Pair, outSize: Pair, strides: Pair, dilations: Pair, pad: PadInfo): tf.Tensor2D {
  const [b, , , c] = x.shape;
  const [kh, kw] = filterSize;
  const [oh, ow] = outSize;
  const [sh, sw] = strides;
  const [dh, dw] = dilations;
  const padded = paddedInput(x, filterSize, outSize, strides, dilations, pad);
  const taps: tf.Tensor4D[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      taps.push(tf.stridedSlice(padded, [0, i * dh, j * dw, 0], [b, i * dh + (oh - 1) * sh + 1, j * dw + (ow - 1) * sw + 1, c], [1, sh, sw, 1]) as tf.Tensor4D);
    }
  }
  const columns = taps.length === 1 ? taps[0] : tf.concat(taps, 3);
  return tf.reshape(columns, [b * oh * ow, kh * kw * c]);
}

/**
 * Filter gradient of a conv2d as one forward convolution over the batch (XNNPACK on wasm): the
 * input, channels first `[Cin,H,W,B]`, convolved with the output gradient as a `[oh,ow,B,Cout]`
 * filter, the original dilation as stride and the original stride as dilation.
 */
export function conv2dFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], strides: Pair, dilations: Pair, pad: PadInfo): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filterShape;
    const [, h, w] = x.shape;
    const [, oh, ow] = dy.shape;
    // XNNPACK packs a convolution's filter anew at every call, which costs more than the product
    // when the filter is a large activation. With stride and dilation 1 the roles can swap: the
    // output gradient, channels first `[Cout,oh,ow,B]`, convolved with the input as a `[H,W,B,Cin]`
    // filter gives the taps reversed, `[Cout,kh,kw,Cin]`. That way the smaller of the two is packed.
    const unit = strides[0] === 1 && strides[1] === 1 && dilations[0] === 1 && dilations[1] === 1;
    const swapped = unit && x.size < dy.size ? explicitPadding([kh - 1 - pad.top, h - oh + pad.top, kw - 1 - pad.left, w - ow + pad.left]) : undefined;
    if (swapped) {
      const turned = tf.conv2d(tf.transpose(dy, [3, 1, 2, 0]) as tf.Tensor4D, tf.transpose(x, [1, 2, 0, 3]) as tf.Tensor4D, 1, swapped, 'NHWC');
      return rotated(tf.transpose(turned, [1, 2, 3, 0]) as tf.Tensor4D);
    }
    const filter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    // A frame of padding only: the convolution pads the transposed input itself, without a padded copy.
    const padding = explicitPadding(inputFrame(x, [kh, kw], [oh, ow], strides, dilations, pad));
    const channelsFirst = tf.transpose(padding ? x : paddedInput(x, [kh, kw], [oh, ow], strides, dilations, pad), [3, 1, 2, 0]) as tf.Tensor4D;
    const gradient = tf.conv2d(channelsFirst, filter, dilations, padding ?? 'valid', 'NHWC', strides);
    return tf.transpose(gradient, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** Filter gradient of a depthwise conv2d `[kh,kw,C,M]`. */
export function depthwiseFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], strides: Pair, dilations: Pair, pad: PadInfo): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, channels, multiplier] = filterShape;
    const [b, oh, ow] = dy.shape;
    const n = b * oh * ow;
    const columns = tf.reshape(im2col(x, [kh, kw], [oh, ow], strides, dilations, pad), [n, kh * kw, channels, 1]);
    const grads = tf.reshape(dy, [n, 1, channels, multiplier]);
    return tf.reshape(tf.sum(tf.mul(columns, grads), 0), [kh, kw, channels, multiplier]) as tf.Tensor4D;
  });
}

/** Input gradient of a depthwise conv2d, as stride-1 depthwise convs with the flipped kernel, one per multiplier. */
export function depthwiseInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], strides: Pair, dilations: Pair, pad: PadInfo): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, channels, multiplier] = filter.shape;
    const [b] = dy.shape;
    const framed = framedOutputGradient(dy, inputShape, [kh, kw], strides, dilations, pad);
    const flipped = rotated(filter);
    const perMultiplier = tf.reshape(framed, [b, framed.shape[1], framed.shape[2], channels, multiplier]);
    const parts: tf.Tensor4D[] = [];
    for (let m = 0; m < multiplier; m++) {
      const dyPart = multiplier === 1 ? framed : (tf.reshape(tf.slice(perMultiplier, [0, 0, 0, 0, m], [-1, -1, -1, -1, 1]), [b, framed.shape[1], framed.shape[2], channels]) as tf.Tensor4D);
      const kernel = tf.slice(flipped, [0, 0, 0, m], [kh, kw, channels, 1]);
      parts.push(tf.depthwiseConv2d(dyPart, kernel, 1, 'valid', 'NHWC', dilations));
    }
    return parts.length === 1 ? parts[0] : (tf.addN(parts) as tf.Tensor4D);
  });
}
