import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationBackbone } from '../adapter.js';
import { expectClose, randomValues, useCpuBackend } from '@dropclass/testing/cpu';
import { resizeBilinear } from '../dropclass/upsample.js';
import { DropClassModel } from '../model/model.js';
import { layerSeed } from '../rng.js';
import { InferenceOptionsError, inferClasses, inferLogits } from './inference.js';

/** Two 3x3 conv blocks, the second with stride 2: border pixels see the zero padding, so windows differ from the whole image. */
function tinyBackbone(seed: number): SegmentationBackbone {
  const input = tfl.input({ shape: [null, null, 3] });
  let x = input;
  for (const [i, strides] of [1, 2].entries()) {
    x = tfl.layers.conv2d({ filters: 5, kernelSize: 3, strides, padding: 'same', kernelInitializer: tfl.initializers.heNormal({ seed: layerSeed(seed, i) }) }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  }
  return { name: 'tiny', model: tfl.model({ inputs: input, outputs: x }), outputStride: 2, inputChannels: 3, inputSizeMultiple: 2, minInputSize: 4 };
}

describe('inference on whole images', () => {
  let model: DropClassModel;
  let image: tf.Tensor4D;
  beforeAll(async () => {
    await useCpuBackend();
    model = DropClassModel.create(tinyBackbone(3), { numClasses: 3, seed: 1 });
    image = tf.tensor4d(randomValues([1, 10, 14, 3], 5), [1, 10, 14, 3]);
  });
  afterAll(() => {
    image.dispose();
    model.dispose();
  });

  const data = (t: tf.Tensor) => {
    const values = t.dataSync().slice();
    t.dispose();
    return values;
  };
  /** The model's logits on `x` zero-padded to `h` x `w`, cropped back. */
  const paddedLogits = (x: tf.Tensor4D, h: number, w: number) =>
    tf.tidy(() => {
      const [b, height, width] = x.shape;
      const logits = model.predictLogits(tf.pad(x, [[0, 0], [0, h - height], [0, w - width], [0, 0]]));
      return tf.slice(logits, [0, 0, 0, 0], [b, height, width, 3]);
    });

  it('pads an image of any size to one the backbone takes and crops the logits back', () => {
    const odd = tf.slice(image, [0, 0, 0, 0], [1, 9, 13, 3]);
    const logits = inferLogits(model, odd);
    expect(logits.shape).toEqual([1, 9, 13, 3]);
    expectClose(data(logits), data(paddedLogits(odd, 10, 14)), 'whole image');
    odd.dispose();
  });

  it('a window the size of the padded image gives the whole-image prediction', () => {
    expectClose(data(inferLogits(model, image, { window: [10, 14] })), data(inferLogits(model, image)), 'window = image');
    // a window larger than the image: the image is padded up to it
    expectClose(data(inferLogits(model, image, { window: [12, 16] })), data(paddedLogits(image, 12, 16)), 'window > image');
  });

  it('averages the logits of overlapping windows', () => {
    // windows 10x8 at x = 0, 4, 6 (the last flush with the right edge)
    const got = inferLogits(model, image, { window: [10, 8], stride: [10, 4] });
    const windows = [0, 4, 6].map((x0) => ({ x0, logits: tf.tidy(() => model.predictLogits(tf.slice(image, [0, 0, x0, 0], [1, 10, 8, 3]))).arraySync()[0] }));
    const got3 = got.arraySync()[0];
    got.dispose();
    let differsFromOneWindow = 0;
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 14; x++) {
        const covering = windows.filter((w) => x >= w.x0 && x < w.x0 + 8);
        for (let k = 0; k < 3; k++) {
          const values = covering.map((w) => w.logits[y][x - w.x0][k]);
          const mean = values.reduce((a, b) => a + b, 0) / values.length;
          expect(got3[y][x][k]).toBeCloseTo(mean, 4);
          if (values.length > 1 && values.some((v) => Math.abs(v - got3[y][x][k]) > 1e-3)) differsFromOneWindow++;
        }
      }
    }
    // the windows disagree where they overlap, so an average (not the last window) was taken
    expect(differsFromOneWindow).toBeGreaterThan(0);
  });

  it('averages windows overlapping in both directions, at uneven strides, to the same float32 values as summing window by window', () => {
    // 6x8 windows at y = 0, 3, 4 and x = 0, 5, 6 (the last of each side flush with the edge): tiles
    // of 1 to 4 rows and columns, covered by 1 to 9 windows
    for (const stride of [[3, 5], [4, 6]] as [number, number][]) {
      const ys = stride[0] === 3 ? [0, 3, 4] : [0, 4];
      const xs = stride[1] === 5 ? [0, 5, 6] : [0, 6];
      const sum = new Float32Array(10 * 14 * 3);
      const count = new Float32Array(10 * 14);
      for (const y0 of ys) {
        for (const x0 of xs) {
          const logits = tf.tidy(() => model.predictLogits(tf.slice(image, [0, y0, x0, 0], [1, 6, 8, 3])));
          const values = logits.dataSync();
          logits.dispose();
          for (let y = 0; y < 6; y++) {
            for (let x = 0; x < 8; x++) {
              count[(y0 + y) * 14 + x0 + x] += 1;
              for (let k = 0; k < 3; k++) sum[((y0 + y) * 14 + x0 + x) * 3 + k] += values[(y * 8 + x) * 3 + k];
            }
          }
        }
      }
      const want = sum.map((v, i) => v / count[Math.floor(i / 3)]);
      expect(Array.from(data(inferLogits(model, image, { window: [6, 8], stride })))).toEqual(Array.from(want));
    }
  });

  it('slides over every image of a batch', () => {
    const pair = tf.concat([image, tf.reverse(image, 1)]) as tf.Tensor4D;
    const both = inferLogits(model, pair, { window: [6, 8], stride: [4, 6] });
    const second = inferLogits(model, tf.slice(pair, [1, 0, 0, 0], [1, 10, 14, 3]), { window: [6, 8], stride: [4, 6] });
    expectClose(data(tf.slice(both, [1, 0, 0, 0], [1, 10, 14, 3])), data(second), 'batch item 2');
    tf.dispose([pair, both]);
  });

  it('flip averages the logits of the image and of its mirror, mirrored back', () => {
    const want = tf.tidy(() => tf.div(tf.add(model.predictLogits(image), tf.reverse(model.predictLogits(tf.reverse(image, 2)), 2)), 2));
    expectClose(data(inferLogits(model, image, { flip: true })), data(want), 'flip');
  });

  it('scales predict the resized image and bring the logits back to the image size', () => {
    const want = tf.tidy(() => {
      const up = model.predictLogits(tf.image.resizeBilinear(image, [20, 28], false, true));
      return tf.div(tf.add(model.predictLogits(image), resizeBilinear(up, 10, 14)), 2);
    });
    expectClose(data(inferLogits(model, image, { scales: [1, 2] })), data(want), 'scales');
  });

  it('leaves no tensor behind, with windows, flip and scales', () => {
    const before = tf.memory().numTensors;
    const classes = inferClasses(model, image, { window: [6, 8], stride: [3, 5], flip: true, scales: [0.6, 1.5] });
    expect(classes.shape).toEqual([1, 10, 14]);
    expect(classes.dtype).toBe('int32');
    classes.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses options that cannot work, saying what would', () => {
    const cases: [object, RegExp][] = [
      [{ window: [7, 8] }, /window 7x8 cannot be taken by the tiny backbone: sides must be multiples of 2 and at least 4; use 8x8/],
      [{ window: [2, 8] }, /use 4x8/],
      [{ window: [8, 8], stride: [9, 4] }, /stride 9x4 is larger than the window 8x8/],
      [{ stride: [4, 4] }, /stride \[4,4\] needs a window/],
      [{ window: [8] }, /window must be \[height, width\]/],
      [{ scales: [] }, /scales must be a non-empty list of positive numbers/],
      [{ scales: [1, -0.5] }, /scales must be a non-empty list of positive numbers .* got \[1,-0.5\]/],
    ];
    const before = tf.memory().numTensors;
    for (const [options, message] of cases) {
      expect(() => inferLogits(model, image, options)).toThrow(InferenceOptionsError);
      expect(() => inferLogits(model, image, options)).toThrow(message);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
