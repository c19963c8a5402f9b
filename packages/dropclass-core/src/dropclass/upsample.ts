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
    const rows = tf.tensor2d(bilinearMatrix(inH, height), [height, inH]);
    const cols = tf.tensor2d(bilinearMatrix(inW, width), [width, inW]);
    // [B,h,w,K] -> [h, B*w*K], resize rows -> [H, B*w*K]
    const byRow = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [inH, batch * inW * depth]);
    const rowsDone = tf.reshape(tf.matMul(rows, byRow), [height, batch, inW, depth]);
    // [H,B,w,K] -> [w, H*B*K], resize columns -> [W, H*B*K]
    const byCol = tf.reshape(tf.transpose(rowsDone, [2, 0, 1, 3]), [inW, height * batch * depth]);
    const colsDone = tf.reshape(tf.matMul(cols, byCol), [width, height, batch, depth]);
    return tf.transpose(colsDone, [2, 1, 0, 3]) as tf.Tensor4D;
  });
}
