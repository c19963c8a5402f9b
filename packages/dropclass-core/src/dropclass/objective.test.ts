import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { NO_CLASS_DROPPED, averagedImportance, classSpecificFeatures } from './importance.js';
import { featureSelection, foldFeatureSelection, maskedCrossEntropy } from './objective.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

describe('DropClass objective pieces', () => {
  beforeAll(() => useCpuBackend());

  it('cross-entropy over no valid pixel is 0 with a finite gradient', () => {
    const logits = tf.randomNormal([1, 2, 2, 3]) as tf.Tensor4D;
    const labels = tf.fill([1, 2, 2], 255, 'int32') as tf.Tensor3D;
    const [value, grad] = tf.tidy(() => {
      const g = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l as tf.Tensor4D, labels))(logits);
      return [maskedCrossEntropy(logits, labels).dataSync()[0], Array.from(g.dataSync())];
    });
    expect(value === 0).toBe(true);
    expect(grad.every((g) => g === 0)).toBe(true);
    tf.dispose([logits, labels]);
  });

  it('cross-entropy averages -log p over valid pixels only', () => {
    const logits = tf.tensor4d([0, 0, Math.log(3), 0, 5, 5], [1, 1, 2, 3]);
    const labels = tf.tensor3d([2, 255], [1, 1, 2], 'int32');
    // pixel 0: p(2) = 3 / 5; pixel 1 is ignored
    expect(maskedCrossEntropy(logits, labels).dataSync()[0]).toBeCloseTo(-Math.log(3 / 5), 5);
    tf.dispose([logits, labels]);
  });

  it('upsamples coarser logits to the labels before the cross-entropy', () => {
    const logits = tf.randomNormal([1, 2, 2, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor3d(new Int32Array(16).fill(1), [1, 4, 4], 'int32');
    const up = tf.image.resizeBilinear(logits, [4, 4], false, true) as tf.Tensor4D;
    expect(maskedCrossEntropy(logits, labels).dataSync()[0]).toBeCloseTo(maskedCrossEntropy(up, labels).dataSync()[0], 5);
    tf.dispose([logits, labels, up]);
  });

  it('averaged importance leaves out the dropped class and rejects an index that is not a class', () => {
    const W = tf.tensor2d([1, -2, 3, 0.5, 0.5, -1], [2, 3]);
    const all = averagedImportance(W, NO_CLASS_DROPPED).dataSync();
    [4 / 3, 1 / 3].forEach((v, i) => expect(all[i]).toBeCloseTo(v, 5));
    const withoutLast = averagedImportance(W, 2).dataSync();
    [0.5, 0.5].forEach((v, i) => expect(withoutLast[i]).toBeCloseTo(v, 5));
    expect(() => averagedImportance(W, 3)).toThrow(/not a class index in 0..2/);
    const A = tf.ones([1, 1, 1, 2]) as tf.Tensor4D;
    expect(Array.from(classSpecificFeatures(A, W, 1).dataSync())).toEqual([0, 0.5]);
    tf.dispose([W, A]);
  });

  it('the folded feature selection, relu(A kernel + bias), equals the layer at inference', () => {
    const c = 3;
    const [gap, scale] = tf.tidy(() => {
      const features = tf.randomNormal([2, 3, 4, c], 0, 1, 'float32', 1) as tf.Tensor4D;
      const importance = tf.tensor1d([0.5, 1.5, 0.25]);
      const weights = {
        kernel: tf.randomNormal([c, c], 0, 1, 'float32', 2) as tf.Tensor2D,
        bias: tf.tensor1d([0.1, -0.2, 0.3]),
        gamma: tf.tensor1d([1.2, 0.7, -0.4]),
        beta: tf.tensor1d([0.05, 0.4, -0.1]),
      };
      const statistics = { mean: tf.tensor1d([0.2, -0.3, 0.1]), variance: tf.tensor1d([0.5, 2, 1.3]) };
      const { selected } = featureSelection(features, importance, weights, 1e-5, statistics);
      const { kernel, bias } = foldFeatureSelection(importance, weights, 1e-5, statistics);
      expect(kernel.shape).toEqual([c, c]);
      const folded = tf.relu(tf.add(tf.reshape(tf.matMul(tf.reshape(features, [-1, c]), kernel), features.shape), bias));
      return [tf.max(tf.abs(tf.sub(folded, selected))).dataSync()[0], tf.max(selected).dataSync()[0]];
    });
    expect(scale).toBeGreaterThan(0);
    expect(gap).toBeLessThan(1e-5 * Math.max(1, scale));
  });
});
