import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomValues, useCpuBackend } from '@dropclass/testing/cpu';
import { batchNormInTraining } from '../ops/batch-norm.js';
import { BatchNormalization, batchNormalization } from './batch-norm.js';

const EPSILON = 1e-5;
const shape = [3, 5, 4, 6];
const [xValues, gammaValues, betaValues, weightValues] = [randomValues(shape, 1), randomValues(6, 2), randomValues(6, 3), randomValues(shape, 4)];

/** tfjs's own batch norm in training: `moments`, then `batchNorm`, differentiated op by op. */
function stock(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D) {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return { y: tf.batchNorm(x, mean, variance, beta, gamma, EPSILON), mean, variance };
}

const fused: typeof stock = (x, gamma, beta) => batchNormInTraining(x, gamma, beta, EPSILON);

/** Values, batch statistics and the gradients of `sum(y * w)` of one batch norm. */
function run(norm: typeof stock) {
  return tf.tidy(() => {
    // x is shifted and scaled so that the mean and variance are far from 0 and 1.
    const x = tf.add(tf.mul(tf.tensor(xValues, shape), 3), 2);
    const [gamma, beta, w] = [tf.tensor1d(gammaValues), tf.tensor1d(betaValues), tf.tensor(weightValues, shape)];
    const { y, mean, variance } = norm(x, gamma, beta);
    const { grads } = tf.valueAndGrads((xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(norm(xs, g as tf.Tensor1D, b as tf.Tensor1D).y, w)))([x, gamma, beta]);
    return [y, mean, variance, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

describe('batch norm in training with the closed-form gradient', () => {
  beforeAll(async () => {
    await useCpuBackend();
  });

  it("gives tfjs's values, statistics and gradients (dx, dgamma, dbeta), against tfjs's stock gradients", () => {
    const want = run(stock);
    const got = run(fused);
    for (const [i, label] of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'].entries()) expectClose(got[i], want[i], label);
  });

  it('leaves no tensor behind, with or without a gradient', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    run(fused);
    expect(tf.memory().numTensors).toBe(before);
    tf.tidy(() => {
      batchNormInTraining(tf.tensor(xValues, shape), tf.tensor1d(gammaValues), tf.tensor1d(betaValues), EPSILON);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('BatchNormalization layer', () => {
  /** A stock layer and ours with the same weights, built on `[null, 5, 4, 6]`. */
  function pair() {
    const layers = [tfl.layers.batchNormalization({ momentum: 0.9, epsilon: EPSILON }), batchNormalization({ momentum: 0.9, epsilon: EPSILON })];
    for (const layer of layers) {
      layer.build([null, 5, 4, 6]);
      layer.setWeights([tf.tensor1d(gammaValues), tf.tensor1d(betaValues), tf.tensor1d(betaValues.map((v) => v / 2)), tf.tensor1d(gammaValues.map((v) => 1 + v * v))]);
    }
    return layers;
  }

  it("trains as tfjs-layers' layer and moves its statistics by PyTorch's rule (unbiased variance)", async () => {
    await tf.setBackend('cpu');
    const x = tf.add(tf.mul(tf.tensor(xValues, shape), 3), 2);
    const [theirs, ours] = pair();
    for (let i = 0; i < 2; i++) {
      const [want, got] = [theirs, ours].map((layer) => tf.tidy(() => (layer.apply(x, { training: true }) as tf.Tensor).dataSync() as Float32Array));
      expectClose(got, want, `output in training, pass ${i}`);
    }
    const [wantWeights, gotWeights] = [theirs, ours].map((layer) => layer.getWeights().map((w) => w.dataSync() as Float32Array));
    for (const [i, label] of ['gamma', 'beta', 'moving mean'].entries()) expectClose(gotWeights[i], wantWeights[i], label);
    // By hand: v <- v + 0.1 (n/(n-1) var_batch - v), twice, from the initial variance 1 + gamma^2.
    const n = shape[0] * shape[1] * shape[2];
    const { variance } = tf.moments(x, [0, 1, 2]);
    const batchVariance = variance.dataSync() as Float32Array;
    const expected = gammaValues.map((g, c) => {
      let v = 1 + g * g;
      for (let i = 0; i < 2; i++) v += 0.1 * ((batchVariance[c] * n) / (n - 1) - v);
      return v;
    });
    expectClose(gotWeights[3], Float32Array.from(expected), 'moving variance');
    const inference = tf.tidy(() => (ours.apply(x, { training: false }) as tf.Tensor).dataSync() as Float32Array);
    const byHand = tf.tidy(() => tf.batchNorm(x, gotWeights[2], Float32Array.from(expected), betaValues, gammaValues, EPSILON).dataSync() as Float32Array);
    expectClose(inference, byHand, 'inference with the moving statistics');
    tf.dispose([x, variance]);
  });

  it('is saved under its own class name and loads with its weights', async () => {
    await tf.setBackend('cpu');
    const input = tfl.input({ shape: [5, 4, 6] });
    const layer = new BatchNormalization({ momentum: 0.9, epsilon: EPSILON });
    const model = tfl.model({ inputs: input, outputs: layer.apply(input) as tfl.SymbolicTensor });
    layer.setWeights(pair()[1].getWeights());
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    expect(JSON.stringify(artifacts!.modelTopology)).toContain('"class_name":"DropClassBatchNormalization"');
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.layers[1]).toBeInstanceOf(BatchNormalization);
    const x = tf.tensor(xValues, [3, 5, 4, 6]);
    const [want, got] = [model, loaded].map((m) => tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array));
    expectClose(got, want, 'prediction');
    x.dispose();
  });

  it('with relu: true, is the batch norm then a ReLU, in training (the fused kernel) and inference, and keeps relu when saved', async () => {
    await tf.setBackend('cpu');
    const input = tfl.input({ shape: [5, 4, 6] });
    const fused = new BatchNormalization({ momentum: 0.9, epsilon: EPSILON, relu: true });
    const plain = new BatchNormalization({ momentum: 0.9, epsilon: EPSILON });
    const model = tfl.model({ inputs: input, outputs: fused.apply(input) as tfl.SymbolicTensor });
    const reference = tfl.model({ inputs: input, outputs: tfl.layers.reLU().apply(plain.apply(input)) as tfl.SymbolicTensor });
    fused.setWeights(pair()[1].getWeights());
    plain.setWeights(pair()[1].getWeights());
    const x = tf.tensor(xValues, [3, 5, 4, 6]);
    for (const training of [true, false]) {
      const [got, want] = [model, reference].map((m) => tf.tidy(() => (m.apply(x, { training }) as tf.Tensor).dataSync() as Float32Array));
      expect(Math.min(...got)).toBe(0);
      expectClose(got, want, `training: ${training}`);
    }
    expectClose(fused.getWeights()[3].dataSync() as Float32Array, plain.getWeights()[3].dataSync() as Float32Array, 'moving variance');
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect((loaded.layers[1] as BatchNormalization).relu).toBe(true);
    expect(new BatchNormalization().relu).toBe(false);
    const [want, got] = [model, loaded].map((m) => tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array));
    expectClose(got, want, 'prediction after loading');
    x.dispose();
    tf.dispose([...model.getWeights(), ...reference.getWeights()]);
  });
});
