import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './src/backend/select.ts';
await initBackend({ backend: 'wasm' });
const time = (name: string, f: () => tf.Tensor) => { tf.tidy(() => f().dataSync()); const ts: number[] = []; for (let i = 0; i < 5; i++) { const t0 = performance.now(); tf.tidy(() => f().dataSync()); ts.push(performance.now() - t0); } ts.sort((a,b)=>a-b); console.log(name.padEnd(40), ts[2].toFixed(1), 'ms'); };
for (const [h, c] of [[128, 16], [64, 32], [16, 128]]) {
  const B = 4, N = B * h * h;
  console.log(`--- ${B}x${h}x${h}x${c} -> ${c}, 3x3`);
  const cols = tf.randomNormal([N, 9 * c]); const dy = tf.randomNormal([N, c]);
  time('matMul transposeA', () => tf.matMul(cols, dy, true, false));
  time('matMul(dy^T, cols) transposeA', () => tf.matMul(dy, cols, true, false));
  time('explicit transpose then matMul', () => tf.matMul(tf.transpose(cols), dy));
  time('transpose(dy) matMul cols', () => tf.matMul(tf.transpose(dy), cols));
  const x = tf.randomNormal([B, h, h, c]) as tf.Tensor4D; const dy4 = tf.randomNormal([B, h, h, c]) as tf.Tensor4D;
  time('conv over batch', () => {
    const xt = tf.transpose(tf.pad(x, [[0,0],[1,1],[1,1],[0,0]]), [3, 1, 2, 0]) as tf.Tensor4D; // [Ci, Hp, Wp, B]
    const f = tf.transpose(dy4, [1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, B, Co]
    return tf.conv2d(xt, f, 1, 'valid'); // [Ci, 3, 3, Co]
  });
  const w = tf.randomNormal([3, 3, c, c]) as tf.Tensor4D; time('forward conv (floor)', () => tf.conv2d(x, w, 1, 'same')); time('filter grad kernel', () => tf.engine().runKernel('Conv2DBackpropFilter', {x, dy: dy4}, {strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3,3,c,c]}) as tf.Tensor); time('input grad kernel', () => tf.engine().runKernel('Conv2DBackpropInput', {dy: dy4, filter: w}, {strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [B,h,h,c]}) as tf.Tensor);

}
