import * as tf from '@tensorflow/tfjs-core';

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
 * Bilinear resize of an NHWC tensor to `[height, width]` with half-pixel centres, written as two
 * matrix products so that its gradient is exact on every backend (tfjs's own ResizeBilinearGrad
 * ignores half-pixel centres).
 */
export function resizeBilinear(x: tf.Tensor4D, height: number, width: number): tf.Tensor4D {
  const [batch, inH, inW, depth] = x.shape;
  if (inH === height && inW === width) return x.clone();
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
