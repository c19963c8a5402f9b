import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { initBackend, wasmThreadCount } from './select.js';
import { startThreadedWasm } from './wasm-threads.js';

describe('the multi-threaded wasm build in Node', () => {
  it('reports failure and leaves no backend when its scripts cannot be written, then starts with 2 threads and computes what cpu computes', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'tfjs-wasm-train-threads-test-'));
    const file = join(scratch, 'not-a-folder');
    writeFileSync(file, '');
    expect(await startThreadedWasm({ threads: 2, scriptDir: join(file, 'scripts') })).toBe(0);
    rmSync(scratch, { recursive: true });
    expect(Object.keys(tf.engine().registry)).not.toContain('wasm');

    expect(await initBackend({ backend: 'wasm', threads: 2, quiet: true })).toBe('wasm');
    expect(wasmThreadCount()).toBe(2);
    // The workers have read their scripts by the end of the start-up: nothing is left behind.
    expect(existsSync(join(tmpdir(), `tfjs-wasm-train-threads-${process.pid}`))).toBe(false);
    const x = tf.randomNormal([2, 32, 32, 8], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 8, 16], 0, 1, 'float32', 2) as tf.Tensor4D;
    const onWasm = tf.conv2d(x, w, 1, 'same').dataSync();
    const [xv, wv] = [x.dataSync(), w.dataSync()];
    await tf.setBackend('cpu');
    const onCpu = tf.conv2d(tf.tensor4d(xv, x.shape), tf.tensor4d(wv, w.shape), 1, 'same').dataSync();
    const scale = Math.max(...onCpu.map(Math.abs));
    const worst = Math.max(...onCpu.map((v, i) => Math.abs(onWasm[i] - v)));
    expect(worst / scale).toBeLessThan(1e-5);
  });

  it('refuses a thread count it cannot use, naming where it came from', async () => {
    process.env.DROPCLASS_THREADS = 'many';
    try {
      await expect(initBackend({ backend: 'cpu', quiet: true })).rejects.toThrow(/threads must be a whole number from 1 to 8, got "many" \(from DROPCLASS_THREADS\)/);
    } finally {
      delete process.env.DROPCLASS_THREADS;
    }
    await expect(initBackend({ backend: 'cpu', threads: 0, quiet: true })).rejects.toThrow(/threads must be a whole number from 1 to 8, got 0$/);
  });
});
