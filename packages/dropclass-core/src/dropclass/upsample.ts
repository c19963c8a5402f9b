import * as tf from '@tensorflow/tfjs-core';
import { backendRegisters } from '../ops/fused-kernels.js';

/**
 * Interpolation matrix `[outSize, inSize]` of bilinear resizing with half-pixel centres
 * (PyTorch `align_corners=False`, TF `half_pixel_centers=True`).
 */
export function bilinearMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const src = Math.max((o + 0.5) * scale - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const frac = src - i0;
    m[o * inSize + i0] += 1 - frac;
    m[o * inSize + i1] += frac;
  }
  return m;
}

/**
 * Name of the kernel a backend may register for {@link resizeBilinear}.
 *
 * Input `{ x }`: float32 `[B, h, w, C]`; attributes `{ height, width }`. Output `[B, height, width,
 * C]`: bilinear with half-pixel centres, the rows resized first, then the columns, with the weights
 * of {@link bilinearMatrix} (each value a sum of the two taps whose weights are not zero, in index
 * order, as the composite's matrix products sum them).
 */
export const RESIZE_BILINEAR_KERNEL = 'DropClassResizeBilinear';

/**
 * Name of the gradient kernel that goes with {@link RESIZE_BILINEAR_KERNEL}.
 *
 * Input `{ dy }`: float32 `[B, H, W, C]`, the gradient of the resized tensor; attributes `{ height,
 * width }`: the input's size `h`, `w`. Output: the gradient of the input, `[B, h, w, C]`.
 */
export const RESIZE_BILINEAR_GRAD_KERNEL = 'DropClassResizeBilinearGrad';

/** The attributes of {@link RESIZE_BILINEAR_KERNEL} (the output's size) and {@link RESIZE_BILINEAR_GRAD_KERNEL} (the input's). */
export interface ResizeBilinearAttrs extends tf.NamedAttrMap {
  height: number;
  width: number;
}

/**
 * Bilinear resize of an NHWC tensor to `[height, width]` with half-pixel centres. A backend that
 * registers {@link RESIZE_BILINEAR_KERNEL} and {@link RESIZE_BILINEAR_GRAD_KERNEL} runs each
 * direction as one kernel (two taps per value); elsewhere it is two matrix products with the
 * interpolation matrices, so that its gradient is exact on every backend (tfjs's own
 * ResizeBilinearGrad ignores half-pixel centres).
 */
export function resizeBilinear(x: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  const [batch, inH, inW, depth] = x.shape;
  if (inH === height && inW === width) return x.clone();
  if (x.dtype === 'float32' && x.size > 0 && backendRegisters(RESIZE_BILINEAR_KERNEL, RESIZE_BILINEAR_GRAD_KERNEL)) return kernelResize(x, height, width);
  return tf.tidy(() => {
    const rows = tf.tensor3d(bilinearMatrix(inH, height), [1, height, inH]);
    const cols = tf.tensor3d(bilinearMatrix(inW, width), [1, width, inW]);
    // Each image's rows: [H,h] x [h, w*K] -> [B, H, w*K], one interpolation matrix for every image.
    const rowsDone = tf.matMul(rows, tf.reshape(x, [batch, inH, inW * depth]));
    // Each output row's columns: [W,w] x [w, K] -> [B*H, W, K]. No transposes, in either direction.
    const colsDone = tf.matMul(cols, tf.reshape(rowsDone, [batch * height, inW, depth]));
    return tf.reshape(colsDone, [batch, height, width, depth]) as tf.Tensor4D;
  });
}

/** {@link resizeBilinear} by the backend's kernels, the gradient by the gradient kernel. */
function kernelResize(x: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  const [, inH, inW] = x.shape;
  const resize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor4D;
    const attrs: ResizeBilinearAttrs = { height, width };
    return {
      value: tf.engine().runKernel(RESIZE_BILINEAR_KERNEL, { x: input }, attrs) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor) => {
        const inputSize: ResizeBilinearAttrs = { height: inH, width: inW };
        return [tf.engine().runKernel(RESIZE_BILINEAR_GRAD_KERNEL, { dy }, inputSize) as tf.Tensor4D];
      },
    };
  });
  return resize(x) as tf.Tensor4D;
}
