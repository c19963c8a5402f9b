import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import { installLeanBackprop } from './lean-backprop.js';

/** An identity whose gradient records the bytes of tensor data alive when it runs. */
function probe(record: (bytes: number) => void) {
  return tf.customGrad((...inputs) => ({
    value: tf.clone(inputs[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => {
      record(tf.memory().numBytes);
      return tf.clone(dy);
    },
  }));
}

/** A chain of 12 layers (product, ReLU, a residual sum), its loss, and the gradients of its weights. */
function step(weights: tf.Variable[], record: (bytes: number) => void = () => {}) {
  const x = tf.tensor2d(Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i)), [64, 32]);
  const { value, grads } = tf.variableGrads(() => {
    // the probe after the first layer: its gradient runs once every later layer's has
    let h = probe(record)(tf.matMul(x, weights[0] as tf.Tensor2D)) as tf.Tensor2D;
    for (const w of weights.slice(1)) h = tf.add(h, tf.relu(tf.matMul(h, w as tf.Tensor2D)));
    return tf.mean(tf.square(h));
  }, weights);
  const result = { loss: value.dataSync()[0], grads: weights.map((w) => Array.from(grads[w.name].dataSync())) };
  tf.dispose([x, value, ...Object.values(grads)]);
  return result;
}

describe('installLeanBackprop', () => {
  let weights: tf.Variable[];
  let stock: { result: ReturnType<typeof step>; bytesAtProbe: number; tensorsLeft: number };
  beforeAll(async () => {
    await tf.setBackend('cpu');
    weights = Array.from({ length: 12 }, (_, i) => tf.variable(tf.randomNormal([32, 32], 0, 0.2, 'float32', i)));
    const before = tf.memory().numTensors;
    let bytesAtProbe = 0;
    const result = step(weights, (b) => (bytesAtProbe = b));
    stock = { result, bytesAtProbe, tensorsLeft: tf.memory().numTensors - before };
    expect(installLeanBackprop()).toBe(true);
  });

  it('computes the same loss and gradients, bit for bit, holding far less late in the backward pass, and leaks nothing', () => {
    const before = tf.memory().numTensors;
    let bytesAtProbe = 0;
    const lean = step(weights, (b) => (bytesAtProbe = b));
    expect(lean).toEqual(stock.result);
    expect(stock.tensorsLeft).toBe(0);
    expect(tf.memory().numTensors - before).toBe(0);
    // tfjs holds every activation saved and every gradient until the end (970,760 bytes at the probe
    // when this was written); freed as it goes, what is left is mostly the weights and their
    // gradients (262,148).
    expect(bytesAtProbe).toBeGreaterThan(0);
    expect(bytesAtProbe).toBeLessThan(0.4 * stock.bytesAtProbe);
    expect(installLeanBackprop()).toBe(true);
  });

  it('keeps the dy the caller gives, and higher-order gradients work', () => {
    const x = tf.tensor1d([0.5, -1, 2]);
    const dy = tf.tensor1d([1, 2, 3]);
    const [g] = tf.grads((a: tf.Tensor) => tf.mul(tf.exp(a), 2))([x], dy);
    expect(dy.isDisposed).toBe(false);
    expect(Array.from(g.dataSync())).toEqual(Array.from(tf.mul(tf.mul(tf.exp(x), 2), dy).dataSync()));
    // d2/dx2 of x^3 = 6x
    const second = tf.grad(tf.grad((a: tf.Tensor) => tf.pow(a, 3)))(x);
    expect(Array.from(second.dataSync())).toEqual([3, -6, 12]);
    tf.dispose([x, dy, g, second]);
  });

  it('keeps a gradient that a gradient function hands on as it is', () => {
    // a customGrad whose gradient passes dy itself on: that tensor becomes its input's gradient
    const pass = tf.customGrad((...inputs) => ({ value: tf.mul(inputs[0] as tf.Tensor, 1), gradFunc: (dy: tf.Tensor) => dy }));
    const x = tf.tensor1d([1, 2, 3]);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pass(tf.mul(a, 3)) as tf.Tensor, 2)))(x);
    expect(Array.from(g.dataSync())).toEqual([6, 6, 6]);
    tf.dispose([x, g]);
  });
});
