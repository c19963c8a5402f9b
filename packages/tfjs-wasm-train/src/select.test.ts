import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { initBackend } from './select.js';

describe('initBackend', () => {
  afterEach(() => {
    delete process.env.DROPCLASS_BACKEND;
  });

  it('picks wasm, the embedded default, when no tfjs-node package is installed', async () => {
    expect(await initBackend({ quiet: true })).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('honours a forced cpu backend, by option and by DROPCLASS_BACKEND', async () => {
    expect(await initBackend({ backend: 'cpu', quiet: true })).toBe('cpu');
    process.env.DROPCLASS_BACKEND = 'wasm';
    expect(await initBackend({ quiet: true })).toBe('wasm');
  });

  it('fails a forced backend that is not installed with what to install', async () => {
    await expect(initBackend({ backend: 'tensorflow', quiet: true })).rejects.toThrow(/install @tensorflow\/tfjs-node-gpu .* or @tensorflow\/tfjs-node/);
    process.env.DROPCLASS_BACKEND = 'tensorflow';
    await expect(initBackend({ quiet: true })).rejects.toThrow(/"tensorflow" was asked for but is not available/);
  });

  it('refuses an unknown backend name, saying where it came from', async () => {
    process.env.DROPCLASS_BACKEND = 'gpu';
    await expect(initBackend({ quiet: true })).rejects.toThrow(/unknown backend "gpu" \(from DROPCLASS_BACKEND\); expected one of tensorflow, wasm, cpu/);
  });

  it('prints the chosen backend once', async () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => lines.push(args.join(' '));
    try {
      await initBackend({ backend: 'cpu' });
      await initBackend({ backend: 'cpu' });
    } finally {
      console.error = original;
    }
    expect(lines.filter((l) => l.includes('backend cpu'))).toHaveLength(1);
  });
});
