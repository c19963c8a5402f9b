import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bilinearMatrix, resizeBilinear } from './upsample.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

describe('resizeBilinear', () => {
  beforeAll(() => useCpuBackend());

  it('matches tfjs resizeBilinear with half-pixel centres in the forward pass', () => {
    const x = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
    const ours = resizeBilinear(x, 12, 9);
    const theirs = tf.image.resizeBilinear(x, [12, 9], false, true);
    expect(ours.shape).toEqual([2, 12, 9, 4]);
    const gap = tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0];
    expect(gap).toBeLessThan(1e-5);
    tf.dispose([x, ours, theirs]);
  });

  it('has the exact adjoint as gradient: <R x, y> = <x, R^T y>', () => {
    const x = tf.randomNormal([1, 4, 3, 2], 0, 1, 'float32', 5) as tf.Tensor4D;
    const y = tf.randomNormal([1, 7, 8, 2], 0, 1, 'float32', 6);
    const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(resizeBilinear(v as tf.Tensor4D, 7, 8), y)))(x);
    const rows = bilinearMatrix(4, 7);
    const cols = bilinearMatrix(3, 8);
    const yv = y.dataSync();
    const expected = new Float32Array(4 * 3 * 2);
    for (let H = 0; H < 7; H++)
      for (let W = 0; W < 8; W++)
        for (let h = 0; h < 4; h++)
          for (let w = 0; w < 3; w++)
            for (let c = 0; c < 2; c++) expected[(h * 3 + w) * 2 + c] += rows[H * 4 + h] * cols[W * 3 + w] * yv[(H * 8 + W) * 2 + c];
    const got = grad.dataSync();
    expected.forEach((e, i) => expect(got[i]).toBeCloseTo(e, 4));
    tf.dispose([x, y, grad]);
  });

  it('rows of the interpolation matrix sum to one', () => {
    const m = bilinearMatrix(5, 13);
    for (let r = 0; r < 13; r++) {
      let sum = 0;
      for (let c = 0; c < 5; c++) sum += m[r * 5 + c];
      expect(sum).toBeCloseTo(1, 6);
    }
  });
});
