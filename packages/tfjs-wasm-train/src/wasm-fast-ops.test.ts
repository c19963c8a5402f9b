import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './select.js';
import { expectClose, randomValues } from '@dropclass/testing';

/** Runs `fn` on both backends with the same input values and returns the two results' values and shapes. */
async function onBoth(values: Float32Array[], shapes: number[][], fn: (...t: tf.Tensor[]) => tf.Tensor) {
  const run = async (backend: 'wasm' | 'cpu') => {
    await tf.setBackend(backend);
    return tf.tidy(() => {
      const out = fn(...values.map((v, i) => tf.tensor(v, shapes[i])));
      return { shape: out.shape, data: out.dataSync() as Float32Array };
    });
  };
  return { wasm: await run('wasm'), cpu: await run('cpu') };
}

/** The same shape and values on both backends. */
function expectSame({ wasm, cpu }: Awaited<ReturnType<typeof onBoth>>, label: string): void {
  expect(wasm.shape, label).toEqual(cpu.shape);
  expectClose(wasm.data, cpu.data, label);
}

describe('faster wasm kernels agree with the cpu backend', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
  });

  for (const [transposeA, transposeB, aShape, bShape] of [
    [true, false, [300, 7], [300, 5]],
    [true, false, [300, 5], [300, 7]],
    [false, true, [40, 6], [9, 6]],
    [true, true, [6, 40], [9, 6]],
    [true, false, [1, 50, 4], [1, 50, 3]],
    [false, false, [20, 6], [6, 3]],
  ] as [boolean, boolean, number[], number[]][]) {
    it(`matMul transposeA=${transposeA} transposeB=${transposeB}: [${aShape}] x [${bShape}]`, async () => {
      const result = await onBoth([randomValues(aShape, 1), randomValues(bShape, 2)], [aShape, bShape], (a, b) => tf.matMul(a, b, transposeA, transposeB));
      expectSame(result, 'matMul');
    });
  }

  it('a batched product with a transposed operand stays with the stock kernel and agrees', async () => {
    expectSame(await onBoth([randomValues([3, 20, 4], 3), randomValues([3, 20, 5], 4)], [[3, 20, 4], [3, 20, 5]], (a, b) => tf.matMul(a, b, true, false)), 'batched');
  });

  for (const [shape, axis, keepDims] of [
    [[4, 32, 32, 8], [0, 1, 2], false],
    [[4, 32, 32, 8], [2, 0, 1], true],
    [[64, 80], 0, false],
    [[64, 80], undefined, false],
    [[8, 16, 40], [0, 1], true],
    [[8, 16, 40], [1, 2], false],
  ] as [number[], number | number[] | undefined, boolean][]) {
    it(`sum and mean over ${JSON.stringify(axis)} of [${shape}]${keepDims ? ', keepDims' : ''}`, async () => {
      const x = randomValues(shape, 5);
      expectSame(await onBoth([x], [shape], (t) => tf.sum(t, axis, keepDims)), 'sum');
      expectSame(await onBoth([x], [shape], (t) => tf.mean(t, axis, keepDims)), 'mean');
    });
  }

  for (const [shape, window] of [
    [[2, 8, 8, 3], 2],
    [[1, 9, 6, 2], 3],
    [[2, 7, 7, 2], 2],
  ] as [number[], number][]) {
    it(`max pooling gradient, ${window}x${window} windows over [${shape}], ties (ReLU zeros) going to the first maximum`, async () => {
      // Rounded and rectified values: many windows hold equal maxima, as after a ReLU.
      const x = randomValues(shape, 8).map((v) => Math.max(0, Math.round(v * 2) / 2));
      // A different weight per output, so that every window's gradient is told apart.
      const dy = (t: tf.Tensor) =>
        tf.grad((v: tf.Tensor) => {
          const pooled = tf.maxPool(v as tf.Tensor4D, window, window, 'valid');
          return tf.sum(tf.mul(pooled, tf.reshape(tf.range(1, 1 + pooled.size), pooled.shape)));
        })(t);
      expectSame(await onBoth([x], [shape], dy), 'maxPool gradient');
    });
  }

  it('sums and means keep NaN and infinities as the cpu backend does', async () => {
    const values = randomValues([64, 100], 8);
    values[3 * 100 + 5] = Number.NaN;
    values[7 * 100 + 6] = Number.NEGATIVE_INFINITY;
    values[9 * 100 + 7] = Number.POSITIVE_INFINITY;
    values[2 * 100 + 8] = Number.POSITIVE_INFINITY;
    values[4 * 100 + 8] = Number.NEGATIVE_INFINITY;
    for (const reduce of [(t: tf.Tensor) => tf.sum(t, 0), (t: tf.Tensor) => tf.mean(t, 0), (t: tf.Tensor) => tf.sum(t)]) {
      const { wasm, cpu } = await onBoth([values], [[64, 100]], reduce);
      const special = (v: number) => (Number.isFinite(v) ? 'finite' : String(v));
      expect(Array.from(wasm.data, special)).toEqual(Array.from(cpu.data, special));
      expect(Array.from(cpu.data, special)).toContain('NaN');
    }
  });

  it('integer sums stay exact', async () => {
    await tf.setBackend('wasm');
    const ints = tf.fill([64, 100], 3, 'int32');
    const total = tf.sum(ints, 0);
    expect(total.dtype).toBe('int32');
    expect(Array.from(total.dataSync())).toEqual(new Array(100).fill(192));
    tf.dispose([ints, total]);
  });

  it('gradients of sum and mean spread dy over the input: the analytic gradient of a loss built from both', async () => {
    await tf.setBackend('wasm');
    const [v, w] = [tf.tensor(randomValues([4, 6, 6, 3], 6), [4, 6, 6, 3]), tf.tensor(randomValues([4, 6, 6, 3], 7), [4, 6, 6, 3])];
    // loss = sum_c mean_bhw(v w)^2 + 0.5 sum_bhwc(v w)  =>  dloss/dv = (2 / N) mean_bhw(v w) w + 0.5 w
    const gradient = tf.grad((t: tf.Tensor) => tf.add(tf.sum(tf.square(tf.mean(tf.mul(t, w), [0, 1, 2]))), tf.sum(tf.mul(tf.sum(tf.mul(t, w), -1), 0.5))))(v);
    const analytic = tf.add(tf.mul(tf.mul(tf.mean(tf.mul(v, w), [0, 1, 2]), 2 / (4 * 6 * 6)), w), tf.mul(w, 0.5));
    expect(gradient.shape).toEqual(analytic.shape);
    expectClose(gradient.dataSync(), analytic.dataSync(), 'gradient');
    tf.dispose([v, w, gradient, analytic]);
  });
});
