import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend } from './backend.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

const noEngine = async () => undefined;

describe('startBackend, for the reference command and the conformance suite', () => {
  afterEach(() => {
    delete process.env.DROPCLASS_BACKEND;
  });

  it('without the engine, sets a backend by name among those registered, by option or by DROPCLASS_BACKEND', async () => {
    await useCpuBackend();
    expect(await startBackend({ backend: 'cpu' }, noEngine)).toBe('cpu');
    process.env.DROPCLASS_BACKEND = 'cpu';
    expect(await startBackend({}, noEngine)).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('without the engine, refuses a backend no package registered, naming the engine to install', async () => {
    await expect(startBackend({ backend: 'wasm' }, noEngine)).rejects.toThrow(/backend "wasm" is not available: install @dropclass\/tfjs-wasm-train/);
  });

  it('with the engine, hands the choice to its initBackend', async () => {
    const calls: unknown[] = [];
    const engine = { initBackend: async (options: unknown) => (calls.push(options), 'wasm') };
    expect(await startBackend({ backend: 'wasm', quiet: true }, async () => engine)).toBe('wasm');
    expect(calls).toEqual([{ backend: 'wasm', quiet: true }]);
  });
});
