import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { initBackend, wasmThreadCount } from './select.js';
import { startThreadedWasm } from './wasm-threads.js';

// As if a version of tfjs-backend-wasm outside the supported range were installed. A file of its
// own: the start-up under test must be the process's first start of wasm.
vi.mock('./version-guard.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./version-guard.js')>();
  return { ...original, threadedWasmSupport: (version?: string) => original.threadedWasmSupport(version ?? '4.23.0') };
});

describe('initBackend with an unsupported tfjs-backend-wasm version', () => {
  it('starts wasm on 1 thread and says why in one line naming the version and the supported range', async () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => lines.push(args.join(' '));
    try {
      expect(await startThreadedWasm({ threads: 2 })).toBe(0);
      expect(Object.keys(tf.engine().registry)).not.toContain('wasm');
      expect(await initBackend({ backend: 'wasm', threads: 2 })).toBe('wasm');
    } finally {
      console.error = original;
    }
    expect(wasmThreadCount()).toBe(1);
    const message = 'tfjs-wasm-train: @tensorflow/tfjs-backend-wasm 4.23.0 is installed; the multi-threaded start-up supports >=4.22.0 <4.23.0 only, so wasm runs on 1 thread';
    expect(lines).toEqual([message, message, 'tfjs-wasm-train: backend wasm (1 thread); native kernels off: turned off by DROPCLASS_NATIVE=0']);
    const sum = tf.add(tf.scalar(1), tf.scalar(2));
    expect(sum.dataSync()[0]).toBe(3);
    sum.dispose();
  });
});
