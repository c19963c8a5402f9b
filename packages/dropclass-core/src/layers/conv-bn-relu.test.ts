import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '@dropclass/testing/cpu';
import { layerSeed } from '../rng.js';
import { batchNormalization } from './batch-norm.js';
import { type ConvLayerConfig, convBnRelu } from './conv-bn-relu.js';

type Tensor = tfl.SymbolicTensor;

/** The conv + batch norm + ReLU the backbones wrote by hand before the shared builder. */
function handWritten(x: Tensor, filters: number, seed: number): Tensor {
  x = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tfl.initializers.heNormal({ seed }) }).apply(x) as Tensor;
  x = batchNormalization({ momentum: 0.9, epsilon: 1e-5 }).apply(x) as Tensor;
  return tfl.layers.reLU().apply(x) as Tensor;
}

const layerKinds = (model: tfl.LayersModel) => model.layers.slice(1).map((l) => l.getClassName());
const withoutName = (config: tf.serialization.ConfigDict) => Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'name'));

describe('convBnRelu', () => {
  beforeAll(() => useCpuBackend());

  it('builds a bias-free conv and a batch norm with its ReLU fused: the weights and outputs, training and not, of the hand-written conv, batch norm and ReLU', () => {
    const input = tfl.input({ shape: [null, null, 3] });
    const built = tfl.model({ inputs: input, outputs: convBnRelu(convBnRelu(input, { filters: 4, kernelSize: 3, seed: layerSeed(5, 0) }), { filters: 6, kernelSize: 3, seed: layerSeed(5, 1) }) });
    const before = tfl.model({ inputs: input, outputs: handWritten(handWritten(input, 4, layerSeed(5, 0)), 6, layerSeed(5, 1)) });
    expect(layerKinds(built)).toEqual(['Conv2D', 'DropClassBatchNormalization', 'Conv2D', 'DropClassBatchNormalization']);
    const withoutRelu = before.layers.slice(1).filter((l) => l.getClassName() !== 'ReLU');
    built.layers.slice(1).forEach((layer, i) => {
      const config = withoutName(layer.getConfig());
      expect(config).toEqual(i % 2 === 1 ? { ...withoutName(withoutRelu[i].getConfig()), relu: true } : withoutName(withoutRelu[i].getConfig()));
    });
    const conv = built.layers[1] as unknown as { useBias: boolean };
    expect(conv.useBias).toBe(false);
    expect(built.layers[1].getWeights().map((w) => w.shape)).toEqual([[3, 3, 3, 4]]);
    // conv 3x3 without bias + BN gamma/beta, twice
    expect(built.countParams() - 2 * (4 + 6)).toBe(9 * 3 * 4 + 2 * 4 + 9 * 4 * 6 + 2 * 6);
    for (const training of [true, false]) {
      const [gap, weightsEqual, min] = tf.tidy(() => {
        const images = tf.randomNormal([2, 8, 6, 3], 0, 1, 'float32', 3);
        const a = built.apply(images, { training }) as tf.Tensor;
        const b = before.apply(images, { training }) as tf.Tensor;
        const same = built.getWeights().every((w, i) => tf.all(tf.equal(w, before.getWeights()[i])).dataSync()[0] === 1);
        return [tf.max(tf.abs(tf.sub(a, b))).dataSync()[0], same, tf.min(a).dataSync()[0]];
      });
      expect(weightsEqual, `training: ${training}`).toBe(true);
      expect(gap, `training: ${training}`).toBe(0);
      expect(min, `training: ${training}`).toBeGreaterThanOrEqual(0);
    }
    built.dispose();
    before.dispose();
  });

  it('stops after the batch norm with relu: false, and strides and dilates the default conv', () => {
    const input = tfl.input({ shape: [null, null, 3] });
    const model = tfl.model({ inputs: input, outputs: convBnRelu(input, { filters: 5, kernelSize: 3, strides: 2, seed: 1, relu: false }) });
    expect(layerKinds(model)).toEqual(['Conv2D', 'DropClassBatchNormalization']);
    const dilated = tfl.model({ inputs: input, outputs: convBnRelu(input, { filters: 2, kernelSize: 3, dilationRate: 2, seed: 1 }) });
    expect(dilated.layers[1].getConfig()).toMatchObject({ dilationRate: [2, 2], strides: [1, 1], padding: 'same', useBias: false });
    const [shape, min] = tf.tidy(() => {
      const y = model.predict(tf.randomNormal([1, 8, 10, 3], 0, 1, 'float32', 4)) as tf.Tensor;
      return [y.shape, tf.min(y).dataSync()[0]];
    });
    expect(shape).toEqual([1, 4, 5, 5]);
    expect(min).toBeLessThan(0);
    model.dispose();
    dilated.dispose();
  });

  it('builds the conv with the given factory, from the bias-free configuration', () => {
    const configs: ConvLayerConfig[] = [];
    const input = tfl.input({ shape: [null, null, 3] });
    const output = convBnRelu(input, {
      filters: 4,
      kernelSize: 1,
      strides: 2,
      seed: 9,
      conv: (config) => {
        configs.push(config);
        return tfl.layers.conv2d({ ...config, padding: 'valid', kernelInitializer: tfl.initializers.heNormal({ seed: config.seed }) });
      },
    });
    expect(configs).toEqual([{ filters: 4, kernelSize: 1, strides: 2, dilationRate: 1, useBias: false, seed: 9 }]);
    const model = tfl.model({ inputs: input, outputs: output });
    expect(model.layers[1].getConfig()).toMatchObject({ padding: 'valid', useBias: false });
    model.dispose();
  });
});
