import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BilinearUpSampling2D } from './upsampling.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

describe('BilinearUpSampling2D', () => {
  beforeAll(() => useCpuBackend());

  it('samples at half-pixel centres (PyTorch align_corners=False), where the stock bilinear layer does not', () => {
    // One row [0, 4]: x2 with half-pixel centres gives [0, 1, 3, 4]; the stock layer gives [0, 2, 4, 4].
    const x = tf.tensor4d([0, 4], [1, 1, 2, 1]);
    const ours = new BilinearUpSampling2D({ factor: 2 }).apply(x) as tf.Tensor;
    expect(Array.from(ours.dataSync())).toEqual([0, 1, 3, 4, 0, 1, 3, 4]);
    const stock = tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }).apply(x) as tf.Tensor;
    expect(Array.from(stock.dataSync())).toEqual([0, 2, 4, 4, 0, 2, 4, 4]);
    const random = tf.randomUniform([2, 3, 5, 4], -1, 1, 'float32', 7) as tf.Tensor4D;
    const up = new BilinearUpSampling2D({ factor: 3 }).apply(random) as tf.Tensor;
    const want = tf.image.resizeBilinear(random, [9, 15], false, true);
    expect(up.shape).toEqual([2, 9, 15, 4]);
    expect(tf.max(tf.abs(tf.sub(up, want))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([x, ours, stock, random, up, want]);
  });

  it('saves its factor and refuses one that is not a positive integer', () => {
    expect(new BilinearUpSampling2D({ factor: 4 }).getConfig().factor).toBe(4);
    expect(() => new BilinearUpSampling2D({ factor: 1.5 })).toThrow(/factor must be a positive integer, got 1.5/);
  });
});
