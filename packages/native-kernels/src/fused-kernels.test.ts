// The contract of the fused kernels that @dropclass/core defines (ops/batch-norm.ts,
// ops/softmax-losses.ts, ops/sgd-update.ts: names, inputs, attributes, outputs) and this package
// implements: by core's names, with the losses and gradients of core's composites in the DropClass
// head, and the SGD step of core's composite.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  BATCH_NORM_TRAINING_GRAD_KERNEL,
  BATCH_NORM_TRAINING_KERNEL,
  DropClassHead,
  MOVING_STATISTICS_KERNEL,
  SGD_UPDATE_KERNEL,
  SOFTMAX_LOSSES_GRAD_KERNEL,
  SOFTMAX_LOSSES_KERNEL,
  sgdUpdate,
  updateMovingStatistics,
} from '@dropclass/core';
import { initBackend, nativeKernelsState } from '@dropclass/tfjs-wasm-train';
import { beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_KERNELS } from './index.js';

const FUSED = [BATCH_NORM_TRAINING_KERNEL, BATCH_NORM_TRAINING_GRAD_KERNEL, SOFTMAX_LOSSES_KERNEL, SOFTMAX_LOSSES_GRAD_KERNEL];

/** The DropClass head's losses and gradients on a fixed batch, and the kernels they ran. */
async function headStep(backend: string): Promise<{ values: number[][]; kernels: Set<string> }> {
  await tf.setBackend(backend);
  const head = new DropClassHead({ numClasses: 4, dropclass: true, seed: 3 });
  head.build([2, 6, 5, 8]);
  let values: number[][] = [];
  const profile = await tf.profile(() => {
    values = tf.tidy(() => {
      const features = tf.randomNormal([2, 6, 5, 8], 0, 1, 'float32', 4) as tf.Tensor4D;
      const labels = tf.tensor3d(Array.from({ length: 60 }, (_, i) => (i % 7 === 6 ? 255 : i % 4)), [2, 6, 5], 'int32');
      const f = () => head.trainingLosses(features, { labels, droppedClass: 1, progress: 0.4 }).total;
      const { value, grads } = tf.variableGrads(f, head.trainableWeights.map((w) => w.read() as tf.Variable));
      return [[value.dataSync()[0]], ...Object.values(grads).map((g) => Array.from(g.dataSync()))];
    });
  });
  for (const w of head.weights) w.dispose();
  return { values, kernels: new Set(profile.kernelNames) };
}

describe("core's fused kernels on wasm", () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
  });

  it("are among the native kernels, by core's names", () => {
    expect([...NATIVE_KERNELS.keys()]).toEqual(expect.arrayContaining(FUSED));
  });

  it('are registered by the native kernels when they run, and not otherwise', () => {
    const state = nativeKernelsState();
    const registered = [...FUSED, SGD_UPDATE_KERNEL, MOVING_STATISTICS_KERNEL].filter((name) => tf.getKernel(name, 'wasm') !== undefined);
    expect(registered).toEqual(state?.active ? [...FUSED, SGD_UPDATE_KERNEL, MOVING_STATISTICS_KERNEL] : []);
  });

  /**
   * Runs `body` (which pushes the values it wants compared) on wasm and on cpu, and expects the same
   * bits from both, with `kernel` run on wasm when the native kernels are and never on cpu.
   */
  async function expectBitsOfComposite(kernel: string, body: (results: number[][]) => void): Promise<void> {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const results: number[][] = [];
      const profile = await tf.profile(() => body(results));
      return { results, ran: profile.kernelNames.includes(kernel) };
    };
    const wasm = await run('wasm');
    const cpu = await run('cpu');
    expect(wasm.ran).toBe(nativeKernelsState()?.active === true);
    expect(cpu.ran).toBe(false);
    expect(wasm.results.length).toBeGreaterThan(0);
    expect(wasm.results).toEqual(cpu.results);
  }

  it("give three SGD steps the weights and velocities of core's composite on the cpu backend, bit for bit", async () => {
    await expectBitsOfComposite(SGD_UPDATE_KERNEL, (results) => {
      for (const weightDecay of [5e-4, 0]) {
        let weight = tf.randomNormal([3, 70001], 0, 1, 'float32', 5);
        let velocity: tf.Tensor | undefined;
        for (let i = 0; i < 3; i++) {
          const gradient = tf.randomNormal([3, 70001], 0, 0.1, 'float32', 6 + i);
          const next = sgdUpdate(weight, gradient, velocity, { learningRate: 0.01 * (i + 1), momentum: 0.9, weightDecay });
          tf.dispose([weight, gradient, velocity]);
          ({ weight, velocity } = next);
          results.push(Array.from(weight.dataSync()), Array.from(velocity.dataSync()));
        }
        tf.dispose([weight, velocity]);
      }
    });
  });

  it("move a batch norm's statistics as core's composite does on the cpu backend, bit for bit", async () => {
    await expectBitsOfComposite(MOVING_STATISTICS_KERNEL, (results) => {
      for (const [count, weight] of [[4096, 0.1], [1, 0.1], [7, 0.37]]) {
        const mean = tf.variable(tf.randomNormal([300], 0, 1, 'float32', 1));
        const variance = tf.variable(tf.randomUniform([300], 0.1, 3, 'float32', 2));
        const moving = { mean: { read: () => mean, write: (t: tf.Tensor) => mean.assign(t) }, variance: { read: () => variance, write: (t: tf.Tensor) => variance.assign(t) } };
        for (let i = 0; i < 3; i++) {
          const batch = { mean: tf.randomNormal([300], 0, 2, 'float32', 3 + i), variance: tf.randomUniform([300], 0, 5, 'float32', 7 + i) };
          updateMovingStatistics(moving, batch, count, weight);
          tf.dispose([batch.mean, batch.variance]);
          results.push(Array.from(mean.dataSync()), Array.from(variance.dataSync()));
        }
        tf.dispose([mean, variance]);
      }
    });
  });

  it("give the DropClass head the losses and gradients of core's composite on the cpu backend", async () => {
    const wasm = await headStep('wasm');
    const cpu = await headStep('cpu');
    expect(FUSED.filter((name) => wasm.kernels.has(name))).toEqual(nativeKernelsState()?.active ? FUSED : []);
    expect(FUSED.filter((name) => cpu.kernels.has(name))).toEqual([]);
    expect(wasm.values.length).toBe(cpu.values.length);
    expect(cpu.values[0][0]).toBeGreaterThan(0);
    // Within 1e-4 of values of order 1 (the selection bias's gradient is 0 up to rounding: it comes before a batch norm).
    wasm.values.forEach((got, i) => {
      const want = cpu.values[i];
      const scale = Math.max(1, ...want.map(Math.abs));
      expect(Math.max(...got.map((v, j) => Math.abs(v - want[j]))) / scale, `result ${i}`).toBeLessThan(1e-4);
    });
  });
});
