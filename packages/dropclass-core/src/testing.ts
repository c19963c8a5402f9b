// Helpers shared by this package's tests; not part of the build (tsconfig.build.json).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import { expect } from 'vitest';

/**
 * Runs the test file on tfjs's cpu backend with tfjs's stock gradients (tfjs-layers registers
 * them): the package needs no backend of its own, and no gradient other packages register.
 */
export async function useCpuBackend(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

/** Every value within 1e-4 of `want`, relative to 1e-3 + |want|. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, label: string): void {
  expect(got.length, label).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-3 + Math.abs(want[i])));
  expect(worst, label).toBeLessThan(1e-4);
}

/** Standard normal values of the given shape (or count), reproducible from `seed`. */
export const randomValues = (shape: number[] | number, seed: number): Float32Array =>
  tf.tidy(() => tf.randomNormal(typeof shape === 'number' ? [shape] : shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
