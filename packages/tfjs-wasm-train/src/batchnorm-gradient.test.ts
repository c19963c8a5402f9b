import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './select.js';

describe('FusedBatchNorm gradient', () => {
  beforeAll(() => initBackend({ backend: 'wasm', quiet: true }));

  it('equals the gradient of batch norm written with elementwise ops, for every input', () => {
    const [x, mean, variance, offset, scale, weights] = [
      tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 1),
      tf.randomNormal([5], 0, 1, 'float32', 2),
      tf.randomUniform([5], 0.5, 2, 'float32', 3),
      tf.randomNormal([5], 0, 1, 'float32', 4),
      tf.randomNormal([5], 0, 1, 'float32', 5),
      tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 6),
    ];
    const eps = 1e-3;
    const fused = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
      tf.sum(tf.mul(weights, tf.batchNorm(a, m, v, o, s, eps))),
    )([x, mean, variance, offset, scale]);
    const plain = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
      tf.sum(tf.mul(weights, tf.add(tf.mul(tf.mul(tf.sub(a, m), tf.rsqrt(tf.add(v, eps))), s), o))),
    )([x, mean, variance, offset, scale]);
    fused.forEach((g, i) => {
      expect(g.shape).toEqual(plain[i].shape);
      const want = plain[i].dataSync();
      g.dataSync().forEach((v, j) => expect(v).toBeCloseTo(want[j], 4));
    });
    tf.dispose([x, mean, variance, offset, scale, weights, ...fused, ...plain]);
  });
});
