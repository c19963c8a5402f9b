import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { beforeAll, describe, expect, it } from 'vitest';
import { BackboneOptionsError } from '@dropclass/core';
import { type UNetOptions, createUNet, unet, unetParameterCount } from './unet.js';

const trainable = (model: tfl.LayersModel) => model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0);

describe('createUNet', () => {
  beforeAll(() => initBackend({ backend: 'wasm', quiet: true }));

  it('returns a full-resolution feature map with base channels, for both upsampling modes', () => {
    for (const upsampling of ['bilinear', 'transposed'] as const) {
      const backbone = createUNet({ base: 4, depth: 2, upsampling, seed: 1 });
      const out = tf.tidy(() => (backbone.model.predict(tf.zeros([2, 16, 12, 3])) as tf.Tensor).shape);
      expect(out).toEqual([2, 16, 12, 4]);
      expect(backbone.model.outputs[0].shape).toEqual([null, null, null, 4]);
      expect(backbone).toMatchObject({ outputStride: 1, inputChannels: 3, inputSizeMultiple: 4, minInputSize: 4 });
      backbone.model.dispose();
    }
  });

  it('has the parameters the description gives: by hand for a small net, 1,964,216 with the classifier for the benchmark net (convs before batch norm have no bias)', () => {
    // base 2, depth 1, 3 input channels: encoder (3->2, 2->2), (2->4, 4->4); decoder (6->2, 2->2).
    const convBn = (cin: number, cout: number) => 9 * cin * cout + 2 * cout; // conv without bias, BN gamma/beta
    const byHand = convBn(3, 2) + convBn(2, 2) + convBn(2, 4) + convBn(4, 4) + convBn(6, 2) + convBn(2, 2);
    const small = createUNet({ base: 2, depth: 1 });
    expect(trainable(small.model)).toBe(byHand);
    expect(unetParameterCount({ base: 2, depth: 1 })).toBe(byHand);
    const transposed = createUNet({ base: 2, depth: 1, upsampling: 'transposed' });
    expect(trainable(transposed.model)).toBe(byHand + 4 * 4 * 4 + 4);
    const bench = createUNet({ base: 16, depth: 4 });
    const classifier = 16 * 8 + 8;
    expect(trainable(bench.model) + classifier).toBe(1_964_216);
    for (const b of [small, transposed, bench]) b.model.dispose();
  });

  it('widens the feature map to featureChannels with one more 3x3 conv + BN + ReLU', () => {
    const backbone = createUNet({ base: 4, depth: 2, featureChannels: 32, seed: 1 });
    const out = tf.tidy(() => {
      const y = backbone.model.predict(tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 2)) as tf.Tensor;
      return { shape: y.shape, min: tf.min(y).dataSync()[0] };
    });
    expect(out.shape).toEqual([1, 16, 16, 32]);
    expect(out.min).toBeGreaterThanOrEqual(0);
    expect(backbone.model.outputs[0].shape).toEqual([null, null, null, 32]);
    const convBn = (cin: number, cout: number) => 9 * cin * cout + 2 * cout; // conv without bias, BN gamma/beta
    expect(trainable(backbone.model)).toBe(unetParameterCount({ base: 4, depth: 2 }) + convBn(4, 32));
    expect(unetParameterCount({ base: 4, depth: 2, featureChannels: 32 })).toBe(trainable(backbone.model));
    backbone.model.dispose();
    expect(() => createUNet({ featureChannels: 0 })).toThrow(/featureChannels: must be a positive integer, got 0/);
  });

  it('the same seed gives the same weights, another seed other weights', () => {
    const weights = (seed: number) => {
      const b = createUNet({ base: 2, depth: 1, seed });
      const values = b.model.getWeights().map((w) => Array.from(w.dataSync()));
      b.model.dispose();
      return values;
    };
    expect(weights(3)).toEqual(weights(3));
    expect(weights(4)[0]).not.toEqual(weights(3)[0]);
  });

  it('refuses options that make no network', () => {
    expect(() => createUNet({ depth: 0 })).toThrow(/depth: must be a positive integer, got 0/);
    expect(() => createUNet({ upsampling: 'nearest' as 'bilinear' })).toThrow(/'bilinear' or 'transposed'/);
  });

  it('checks its options once, by the adapter\'s schema: direct calls and run configs get the same limits and errors', () => {
    for (const [options, message] of [
      [{ depth: 7 }, 'depth: must be at most 6, got 7'],
      [{ base: 2.5 }, 'base: must be a positive integer, got 2.5'],
      [{ upsampling: 'nearest' }, 'upsampling: must be \'bilinear\' or \'transposed\', got "nearest"'],
      [{ depht: 2 }, 'depht: unknown option: remove it or check its spelling'],
    ] as const) {
      const expected = `invalid options for the unet backbone:\n  ${message}`;
      expect(() => createUNet(options as UNetOptions)).toThrow(BackboneOptionsError);
      expect(() => createUNet(options as UNetOptions)).toThrow(expected);
      expect(() => unet.parseOptions(options)).toThrow(expected);
    }
    expect(() => createUNet({ inputChannels: 0 })).toThrow('invalid options for the unet backbone:\n  inputChannels: must be a positive integer, got 0');
    expect(unet.defaults).toEqual({ base: 16, depth: 4, upsampling: 'bilinear' });
    expect(unet.parseOptions({ depth: 6, featureChannels: 8 })).toEqual({ base: 16, depth: 6, upsampling: 'bilinear', featureChannels: 8 });
  });
});
