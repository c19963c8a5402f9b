import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomValues, useCpuBackend } from '@dropclass/testing/cpu';
import { type SoftmaxLossesAttrs, softmaxLosses } from './softmax-losses.js';

/** The two terms by their definitions, differentiated op by op by tfjs. */
function definition(logits: tf.Tensor2D, labels: number[] | undefined, { ignoreIndex, excludedClass, suppressedClass }: SoftmaxLossesAttrs): tf.Tensor1D {
  const [n, k] = logits.shape;
  let crossEntropy: tf.Tensor = tf.scalar(0);
  if (labels) {
    const counted = labels.map((l) => l >= 0 && l < k && l !== ignoreIndex && l !== excludedClass);
    const picks = tf.oneHot(labels.map((l, i) => (counted[i] ? l : -1)), k);
    const count = counted.filter(Boolean).length;
    crossEntropy = tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), picks))), Math.max(count, 1));
  }
  const suppression = suppressedClass >= 0 ? tf.mean(tf.slice(tf.softmax(logits), [0, suppressedClass], [n, 1])) : tf.scalar(0);
  return tf.stack([crossEntropy, suppression]) as tf.Tensor1D;
}

/** Values and gradient of `a * crossEntropy + b * suppression`. */
function valuesAndGradient(f: (x: tf.Tensor2D) => tf.Tensor1D, logits: tf.Tensor2D, a: number, b: number): [number[], Float32Array] {
  return tf.tidy(() => {
    const gradient = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor2D), tf.tensor1d([a, b]))))(logits);
    return [Array.from(f(logits).dataSync()), gradient.dataSync() as Float32Array];
  });
}

describe('softmaxLosses', () => {
  beforeAll(() => useCpuBackend());

  const k = 5;
  // Classes, the ignore index, an excluded class (3) and labels outside 0..K-1 (7, -2).
  const labels = [0, 1, 255, 3, 4, 2, 7, 3, -2, 1, 0, 4];
  const n = labels.length;
  const cases: [string, number[] | undefined, SoftmaxLossesAttrs, number, number][] = [
    ['cross-entropy only', labels, { ignoreIndex: 255, excludedClass: -1, suppressedClass: -1 }, 1, 0],
    ['both terms, the suppressed class also excluded', labels, { ignoreIndex: 255, excludedClass: 3, suppressedClass: 3 }, 0.7, 10],
    ['suppression only, no labels', undefined, { ignoreIndex: 255, excludedClass: -1, suppressedClass: 1 }, 0, 2],
    ['an ignore index inside the classes', labels, { ignoreIndex: 0, excludedClass: -1, suppressedClass: 4 }, 1.5, -0.5],
  ];
  for (const [name, l, attrs, a, b] of cases) {
    it(`matches the definitions and their gradient: ${name}`, () => {
      const logits = tf.tensor2d(randomValues([n, k], 3).map((v) => 3 * v), [n, k]);
      const labelTensor = l ? tf.tensor1d(l, 'int32') : undefined;
      const [want, wantGradient] = valuesAndGradient((x) => definition(x, l, attrs), logits, a, b);
      const [got, gotGradient] = valuesAndGradient((x) => softmaxLosses(x, labelTensor, attrs), logits, a, b);
      expectClose(got, want, `${name}: values`);
      expectClose(gotGradient, wantGradient, `${name}: gradient`);
      if (!l) expect(got[0]).toBe(0);
      tf.dispose([logits, labelTensor]);
    });
  }

  it('takes logits of any rank with labels of the same shape less the class axis, and float labels', () => {
    const logits = tf.tensor4d(randomValues([2, 2, 3, k], 4), [2, 2, 3, k]);
    const labels4 = tf.tensor3d(labels, [2, 2, 3], 'float32');
    const attrs = { ignoreIndex: 255, excludedClass: 2, suppressedClass: 2 };
    const flat = tf.tidy(() => softmaxLosses(tf.reshape(logits, [n, k]), tf.tensor1d(labels, 'int32'), attrs).dataSync());
    const shaped = tf.tidy(() => softmaxLosses(logits, labels4, attrs).dataSync());
    expect(Array.from(shaped)).toEqual(Array.from(flat));
    expect(() => softmaxLosses(logits, tf.zeros([2, 2, 2]), attrs)).toThrow(/labels \[2, 2, 2\] do not match logits \[2, 2, 3, 5\]/);
    expect(() => softmaxLosses(logits, labels4, { ...attrs, suppressedClass: 5 })).toThrow(/suppressedClass 5 is not a class of these 5-class logits/);
    tf.dispose([logits, labels4]);
  });

  it('is 0 with a zero gradient when no pixel counts, and keeps no tensor', () => {
    const logits = tf.tensor2d(randomValues([3, k], 5), [3, k]);
    const ignored = tf.tensor1d([255, 255, 9], 'int32');
    const before = tf.memory().numTensors;
    const [values, gradient] = valuesAndGradient((x) => softmaxLosses(x, ignored, { ignoreIndex: 255, excludedClass: -1, suppressedClass: -1 }), logits, 1, 1);
    expect(values).toEqual([0, 0]);
    expect(Array.from(gradient).every((g) => g === 0)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([logits, ignored]);
  });
});
