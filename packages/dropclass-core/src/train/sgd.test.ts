import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/select.js';
import { Sgd, polyLearningRate } from './sgd.js';

describe('Sgd', () => {
  beforeAll(() => initBackend({ backend: 'wasm', quiet: true }));

  it('follows torch.optim.SGD: g = grad + wd w; v = m v + g; w -= lr v', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const sgd = new Sgd({ momentum: 0.9, weightDecay: 0.1 });
    const grad = tf.tensor1d([0.5, 0.25]);
    sgd.step([{ key: 'w', variable: w, gradient: grad }], 0.1);
    // g = [0.6, 0.05]; v = g; w = [0.94, -2.005]
    expect(Array.from(w.dataSync()).map((v) => +v.toFixed(6))).toEqual([0.94, -2.005]);
    sgd.step([{ key: 'w', variable: w, gradient: grad }], 0.1);
    // g = [0.594, 0.0495]; v = 0.9 [0.6, 0.05] + g = [1.134, 0.0945]; w = [0.8266, -2.01445]
    expect(Array.from(w.dataSync()).map((v) => +v.toFixed(5))).toEqual([0.8266, -2.01445]);
    const state = sgd.getState();
    expect(Array.from(state.w.dataSync()).map((v) => +v.toFixed(5))).toEqual([1.134, 0.0945]);
    const restored = new Sgd({ momentum: 0.9, weightDecay: 0.1 });
    restored.setState(state);
    const before = tf.memory().numTensors;
    sgd.step([{ key: 'w', variable: w, gradient: grad }], 0.1);
    expect(tf.memory().numTensors).toBe(before);
    sgd.dispose();
    restored.dispose();
    tf.dispose([w, grad]);
  });

  it('poly decay goes from the base rate to zero with power 0.9', () => {
    expect(polyLearningRate(0.01, 0, 100)).toBe(0.01);
    expect(polyLearningRate(0.01, 50, 100)).toBeCloseTo(0.01 * Math.pow(0.5, 0.9), 12);
    expect(polyLearningRate(0.01, 100, 100)).toBe(0);
  });
});
