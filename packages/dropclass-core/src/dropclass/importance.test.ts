import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { classSpecificFeatures } from './importance.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

describe('classSpecificFeatures', () => {
  beforeAll(() => useCpuBackend());

  it('scales the features by relu of the class column of the classifier kernel', () => {
    const features = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);
    const kernel = tf.tensor2d([0.5, -1, -2, 3, 4, 0], [3, 2]);
    const result = classSpecificFeatures(features, kernel, 1);
    // column 1 = [-1, 3, 0] -> relu [0, 3, 0]
    expect(Array.from(result.dataSync())).toEqual([0, 6, 0, 0, 15, 0]);
    tf.dispose([features, kernel, result]);
  });

  it('refuses a class index outside the classifier with its own RangeError, leaking no tensor', () => {
    const features = tf.ones([1, 2, 2, 3]) as tf.Tensor4D;
    const kernel = tf.ones([3, 4]) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    for (const index of [4, -1, 1.5]) {
      expect(() => classSpecificFeatures(features, kernel, index)).toThrow(RangeError);
      expect(() => classSpecificFeatures(features, kernel, index)).toThrow(
        new RegExp(`class index ${index} is not a class of this 4-class classifier; give an integer in 0\\.\\.3`),
      );
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([features, kernel]);
  });
});
