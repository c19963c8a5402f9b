import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '@dropclass/testing/cpu';
import { foldBatchNorms } from './fold-batch-norm.js';

/** Gives a batch norm statistics and an affine part far from their initial values. */
function moveNorm(norm: tfl.layers.Layer, channels: number, seed: number): void {
  const values = (offset: number, spread: number) => tf.add(tf.mul(tf.randomUniform([channels], 0, 1, 'float32', seed + offset), spread), offset === 3 ? 0.2 : -0.5 * spread);
  norm.setWeights([values(0, 2), values(1, 1), values(2, 1), values(3, 3)]);
}

describe('foldBatchNorms', () => {
  beforeAll(useCpuBackend);

  it('folds each conv -> batch norm (-> ReLU) into one conv and computes the same outputs', () => {
    const input = tfl.input({ shape: [6, 7, 3] });
    const conv = (filters: number, extra: Record<string, unknown> = {}) => tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tfl.initializers.glorotNormal({ seed: filters }), ...extra });
    const norms: tfl.layers.Layer[] = [];
    const norm = () => {
      const layer = tfl.layers.batchNormalization({ epsilon: 1e-3 });
      norms.push(layer);
      return layer;
    };
    // conv -> BN -> ReLU layer, folded whole
    const a = tfl.layers.reLU().apply(norm().apply(conv(4).apply(input))) as tfl.SymbolicTensor;
    // conv with a bias (and dilation) -> BN, then an Activation: folded with the activation
    const b = tfl.layers.activation({ activation: 'relu' }).apply(norm().apply(conv(5, { useBias: true, biasInitializer: 'ones', dilationRate: 2 }).apply(a))) as tfl.SymbolicTensor;
    // conv -> BN read by two layers: the BN is folded, the ReLU after it cannot be
    const c = norm().apply(conv(3).apply(b)) as tfl.SymbolicTensor;
    const both = tfl.layers.concatenate().apply([tfl.layers.reLU().apply(c) as tfl.SymbolicTensor, c]) as tfl.SymbolicTensor;
    // a conv read by two layers, and a batch norm after a layer that is not a conv: left as they are
    const shared = conv(2).apply(both) as tfl.SymbolicTensor;
    const d = tfl.layers.add().apply([norm().apply(shared) as tfl.SymbolicTensor, shared]) as tfl.SymbolicTensor;
    const e = norm().apply(tfl.layers.maxPooling2d({ poolSize: 1 }).apply(d)) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: e });
    norms.forEach((layer, i) => moveNorm(layer, (layer.getWeights()[0] as tf.Tensor).shape[0], 10 * i));

    const folded = foldBatchNorms(model);
    const classes = folded.layers.map((l) => l.getClassName());
    expect(classes.filter((n) => n === 'BatchNormalization')).toHaveLength(2);
    expect(classes.filter((n) => n === 'ReLU' || n === 'Activation')).toHaveLength(1);
    expect(classes.filter((n) => n === 'Conv2D')).toHaveLength(4);
    const activations = folded.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => (l.getConfig() as { activation: string }).activation);
    expect(activations).toEqual(['relu', 'relu', 'linear', 'linear']);

    const x = tf.randomNormal([2, 6, 7, 3], 0, 1, 'float32', 5);
    const want = model.predict(x) as tf.Tensor;
    const got = folded.predict(x) as tf.Tensor;
    const scale = tf.max(tf.abs(want)).dataSync()[0];
    const gap = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0];
    expect(scale).toBeGreaterThan(0.1);
    expect(gap / scale).toBeLessThan(1e-5);
    // the model itself is untouched, and the copy shares no weights with it
    folded.dispose();
    expect((model.predict(x) as tf.Tensor).dataSync()).toEqual(want.dataSync());
    model.dispose();
  });

  it('leaves a model without conv -> batch norm pairs as it is', () => {
    const input = tfl.input({ shape: [4] });
    const model = tfl.model({ inputs: input, outputs: tfl.layers.batchNormalization().apply(tfl.layers.dense({ units: 3 }).apply(input)) as tfl.SymbolicTensor });
    const folded = foldBatchNorms(model);
    expect(folded.layers.map((l) => l.getClassName())).toEqual(model.layers.map((l) => l.getClassName()));
    const x = tf.randomNormal([2, 4]);
    expect((folded.predict(x) as tf.Tensor).dataSync()).toEqual((model.predict(x) as tf.Tensor).dataSync());
    folded.dispose();
    model.dispose();
  });
});
