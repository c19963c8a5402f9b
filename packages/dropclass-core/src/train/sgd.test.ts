import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Sgd, polyLearningRate } from './sgd.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

describe('Sgd', () => {
  beforeAll(() => useCpuBackend());

  it('follows torch.optim.SGD: g = grad + wd w; v = m v + g; w -= lr v; a restored state steps as the original', () => {
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
    // An optimizer restored from that state takes the same next step as the original, on its own copy
    // of the buffers; one without the state would not.
    const restored = new Sgd({ momentum: 0.9, weightDecay: 0.1 });
    restored.setState(state);
    const fresh = new Sgd({ momentum: 0.9, weightDecay: 0.1 });
    const [wRestored, wFresh] = [tf.variable(w.clone()), tf.variable(w.clone())];
    const before = tf.memory().numTensors;
    sgd.step([{ key: 'w', variable: w, gradient: grad }], 0.1);
    expect(tf.memory().numTensors).toBe(before);
    // g = [0.58266, 0.048555]; v = 0.9 [1.134, 0.0945] + g = [1.60326, 0.133605]; w = [0.666274, -2.0278105]
    expect(Array.from(w.dataSync()).map((v) => +v.toFixed(5))).toEqual([0.66627, -2.02781]);
    // The original's step did not move the restored buffers (setState copies).
    expect(Array.from(restored.getState().w.dataSync()).map((v) => +v.toFixed(5))).toEqual([1.134, 0.0945]);
    restored.step([{ key: 'w', variable: wRestored, gradient: grad }], 0.1);
    expect(Array.from(wRestored.dataSync())).toEqual(Array.from(w.dataSync()));
    expect(Array.from(restored.getState().w.dataSync())).toEqual(Array.from(sgd.getState().w.dataSync()));
    fresh.step([{ key: 'w', variable: wFresh, gradient: grad }], 0.1);
    // Without the momentum state: v = g, w = [0.768334, -2.0193055].
    expect(Array.from(wFresh.dataSync()).map((v) => +v.toFixed(5))).toEqual([0.76833, -2.01931]);
    sgd.dispose();
    restored.dispose();
    fresh.dispose();
    tf.dispose([w, wRestored, wFresh, grad]);
  });

  it('poly decay goes from the base rate to zero with power 0.9', () => {
    expect(polyLearningRate(0.01, 0, 100)).toBe(0.01);
    expect(polyLearningRate(0.01, 50, 100)).toBeCloseTo(0.01 * Math.pow(0.5, 0.9), 12);
    expect(polyLearningRate(0.01, 100, 100)).toBe(0);
  });
});
