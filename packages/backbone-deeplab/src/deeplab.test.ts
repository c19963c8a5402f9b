import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { beforeAll, describe, expect, it } from 'vitest';
import { BackboneOptionsError } from '@dropclass/core';
import { type DeepLabOptions, createDeepLabV3, createResNetEncoder, deeplabv3 } from './deeplab.js';
import { AtrousConv2D } from './layers.js';

const trainable = (model: tfl.LayersModel) => model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0);

describe('createDeepLabV3', () => {
  beforeAll(() => initBackend({ backend: 'wasm', quiet: true }));

  it('returns the ASPP feature map at output stride 16 and 8, for both layouts', () => {
    for (const [layout, outputStride] of [['resnet18', 16], ['resnet18', 8], ['resnet34', 16]] as const) {
      const backbone = createDeepLabV3({ layout, width: 0.125, outputStride, seed: 1 });
      const shape = tf.tidy(() => (backbone.model.predict(tf.zeros([1, 64, 64, 3])) as tf.Tensor).shape);
      expect(shape).toEqual([1, 64 / outputStride, 64 / outputStride, Math.round(256 * 0.125)]);
      expect(backbone.model.outputs[0].shape).toEqual([null, null, null, Math.round(256 * 0.125)]);
      expect(backbone).toMatchObject({ outputStride, inputSizeMultiple: outputStride, name: `deeplabv3-${layout}` });
      backbone.model.dispose();
    }
  });

  it('has the ResNet-18 encoder of torchvision (11,176,512 parameters without fc) plus the ASPP head', () => {
    const c = 512;
    const a = 256;
    const bn = 2 * a;
    const asppParams = c * a + bn + 3 * (9 * c * a + bn) + (c * a + bn) + 5 * a * a + bn;
    const backbone = createDeepLabV3({ layout: 'resnet18', width: 1 });
    expect(trainable(backbone.model)).toBe(11_176_512 + asppParams);
    backbone.model.dispose();
  });

  it('the same seed gives the same weights', () => {
    const weights = (seed: number) => {
      const b = createDeepLabV3({ width: 0.125, seed });
      const w = Array.from(b.model.getWeights()[0].dataSync());
      b.model.dispose();
      return w;
    };
    expect(weights(2)).toEqual(weights(2));
    expect(weights(3)).not.toEqual(weights(2));
  });

  it('refuses impossible options', () => {
    expect(() => createDeepLabV3({ outputStride: 4 as 8 })).toThrow(/outputStride: must be 8 or 16, got 4/);
    expect(() => createDeepLabV3({ layout: 'resnet101' as 'resnet18' })).toThrow(/layout: must be resnet18, resnet34 or resnet50, got "resnet101"/);
  });

  it("checks its options once, by the adapter's schema: direct calls and run configs get the same limits and errors", () => {
    for (const [options, message] of [
      [{ outputStride: 32 }, 'outputStride: must be 8 or 16, got 32'],
      [{ width: 0 }, 'width: must be a number above 0 and at most 4, got 0'],
      [{ width: 5 }, 'width: must be a number above 0 and at most 4, got 5'],
      [{ asppChannels: 1.5 }, 'asppChannels: must be a positive integer, got 1.5'],
      [{ headConv: 'yes' }, 'headConv: must be true or false, got "yes"'],
      [{ stride: 8 }, 'stride: unknown option: remove it or check its spelling'],
    ] as const) {
      const expected = `invalid options for the deeplabv3 backbone:\n  ${message}`;
      expect(() => createDeepLabV3(options as DeepLabOptions)).toThrow(BackboneOptionsError);
      expect(() => createDeepLabV3(options as DeepLabOptions)).toThrow(expected);
      expect(() => deeplabv3.parseOptions(options)).toThrow(expected);
    }
    expect(deeplabv3.defaults).toEqual({ layout: 'resnet18', width: 1, outputStride: 16, headConv: false });
    // the encoder alone shares the layout and width limits, and takes output stride 32 too
    expect(() => createResNetEncoder({ width: 5 })).toThrow('invalid options for the resnet-encoder backbone:\n  width: must be a number above 0 and at most 4, got 5');
    expect(() => createResNetEncoder({ outputStride: 4 as 8 })).toThrow('outputStride: must be 8, 16 or 32, got 4');
    const encoder = createResNetEncoder({ width: 0.125, outputStride: 32 });
    expect(encoder.outputs[0].shape).toEqual([null, null, null, 64]);
    encoder.dispose();
  });
});

describe('AtrousConv2D', () => {
  beforeAll(() => initBackend({ backend: 'wasm', quiet: true }));

  it('equals a dilated conv2d, including sizes that are not multiples of the rate, and rates at least the map (the centre tap alone)', () => {
    for (const [h, w, rate] of [[9, 7, 2], [12, 12, 3], [5, 6, 6], [6, 6, 6], [8, 4, 12], [7, 9, 8]]) {
      const layer = new AtrousConv2D({ filters: 3, kernelSize: 3, dilationRate: rate, seed: 4 });
      const x = tf.randomNormal([2, h, w, 2], 0, 1, 'float32', 5);
      const ours = layer.apply(x) as tf.Tensor;
      const reference = tf.conv2d(x as tf.Tensor4D, layer.getWeights()[0] as tf.Tensor4D, 1, 'same', 'NHWC', rate);
      const gap = tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0];
      expect(gap).toBeLessThan(1e-4);
      tf.dispose([x, ours, reference]);
    }
  });

  it('pads a strided conv symmetrically, as PyTorch padding=k//2 (not TF same, which pads bottom and right only)', () => {
    for (const [h, kernelSize] of [[8, 3], [9, 3], [8, 7], [8, 1]]) {
      const layer = new AtrousConv2D({ filters: 3, kernelSize, dilationRate: 1, strides: 2, seed: 4 });
      const x = tf.randomNormal([2, h, h, 2], 0, 1, 'float32', 5);
      const ours = layer.apply(x) as tf.Tensor;
      const p = (kernelSize - 1) / 2;
      const reference = tf.conv2d(x as tf.Tensor4D, layer.getWeights()[0] as tf.Tensor4D, 2, p);
      expect(ours.shape).toEqual(reference.shape);
      expect(tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0]).toBeLessThan(1e-4);
      if (kernelSize > 1 && h % 2 === 0) {
        const tfSame = tf.conv2d(x as tf.Tensor4D, layer.getWeights()[0] as tf.Tensor4D, 2, 'same');
        expect(tf.max(tf.abs(tf.sub(ours, tfSame))).dataSync()[0]).toBeGreaterThan(1e-2);
        tfSame.dispose();
      }
      tf.dispose([x, ours, reference]);
    }
  });

  it('with a rate at least the map, has the gradient of the dilated conv: the centre tap only', () => {
    const layer = new AtrousConv2D({ filters: 2, kernelSize: 3, dilationRate: 12, seed: 1 });
    const x = tf.randomNormal([2, 8, 6, 3], 0, 1, 'float32', 2);
    layer.apply(x);
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar);
    const g = Object.values(grads)[0];
    expect(g.shape).toEqual([3, 3, 3, 2]);
    // the centre tap's gradient of sum(y^2) with y = x w_c: 2 x^T (x w_c), summed over the pixels
    const want = tf.tidy(() => {
      const rows = tf.reshape(x, [-1, 3]);
      const centre = tf.reshape(tf.slice(layer.getWeights()[0], [1, 1, 0, 0], [1, 1, 3, 2]), [3, 2]);
      return tf.mul(tf.matMul(rows, tf.matMul(rows, centre), true, false), 2);
    });
    const values = g.arraySync() as number[][][][];
    const centreGap = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.tensor2d(values[1][1]), want))).dataSync()[0]);
    expect(centreGap).toBeLessThan(1e-3);
    expect(tf.tidy(() => tf.max(tf.abs(want)).dataSync()[0])).toBeGreaterThan(1);
    values.forEach((row, ky) => row.forEach((tap, kx) => (ky === 1 && kx === 1) || expect(tap.flat().every((v) => v === 0)).toBe(true)));
    tf.dispose([x, value, want, ...Object.values(grads)]);
  });

  it('has a gradient, where tfjs refuses one for dilated convolutions', () => {
    const layer = new AtrousConv2D({ filters: 2, kernelSize: 3, dilationRate: 2, seed: 1 });
    const x = tf.randomNormal([1, 8, 8, 2], 0, 1, 'float32', 2);
    layer.apply(x);
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar);
    const g = Object.values(grads)[0].dataSync();
    expect(g.every(Number.isFinite) && g.some((v) => v !== 0)).toBe(true);
    tf.dispose([x, value, ...Object.values(grads)]);
  });
});
