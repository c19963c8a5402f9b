import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { startThreadedWasm } from './wasm-threads.js';

// A file of its own: the start-up under test must be the process's first start of wasm.
describe('the multi-threaded wasm start-up', () => {
  it('gives the start-up up when a worker dies while loading, and the next start works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-wasm-train-threads-test-'));
    // An empty script: the worker ends at once and never reports that it has loaded.
    const started = await startThreadedWasm({ threads: 2, scriptDir: dir, startTimeoutMs: 2000, workerScript: () => '' });
    expect(started).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['main.js', 'worker.js']);
    rmSync(dir, { recursive: true });
    expect(Object.keys(tf.engine().registry)).not.toContain('wasm');
    expect(await startThreadedWasm({ threads: 2 })).toBe(2);
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]).toBe(3);
  });
});
