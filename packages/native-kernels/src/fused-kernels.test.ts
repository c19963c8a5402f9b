// The contract of the fused kernels that @dropclass/core defines (ops/batch-norm.ts,
// ops/softmax-losses.ts: names, inputs, attributes, outputs) and this package implements: by core's
// names, and with the losses and gradients of core's composites, in the DropClass head.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  BATCH_NORM_TRAINING_GRAD_KERNEL,
  BATCH_NORM_TRAINING_KERNEL,
  DropClassHead,
  SOFTMAX_LOSSES_GRAD_KERNEL,
  SOFTMAX_LOSSES_KERNEL,
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
    const registered = FUSED.filter((name) => tf.getKernel(name, 'wasm') !== undefined);
    expect(registered).toEqual(state?.active ? FUSED : []);
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
