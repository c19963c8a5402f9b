// Helpers the packages' tests share (core's and the engine's): value comparisons and reproducible
// random values. Loads tfjs-core only; `@dropclass/testing/cpu` adds the cpu backend.
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

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
