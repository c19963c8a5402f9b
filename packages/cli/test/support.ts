// Test support, not part of the package's build: the built command line run as a user runs it, and
// the tiny run config the command-line tests train.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built command line; the tests run it, so the package must be built first. */
export const bin = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/bin/dropclass.js');

/** What a finished command left: its exit code or signal and its output. */
export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the command line as a user would, in `cwd`, on the wasm backend, with `env` added; `onStart` gets the process (to kill it, say). */
export function dropclass(args: string[], options: { cwd: string; env?: Record<string, string>; onStart?: (child: ChildProcess) => void }): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: options.cwd, env: { ...process.env, DROPCLASS_BACKEND: 'wasm', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
    options.onStart?.(child);
  });
}

/** A U-Net run config small enough to train in seconds, on a synthetic set generated under `root`; `extra` overrides. */
export const tinyConfig = (root: string, extra: Record<string, unknown> = {}) => ({
  backbone: { kind: 'unet', options: { base: 2, depth: 1 } },
  dataset: { kind: 'folder', root, evalSplits: ['val', 'val-shifted'], generate: { seed: 0, size: 16, train: 8, val: 3, valShifted: 3 } },
  crop: [16, 16],
  batchSize: 2,
  iterations: 6,
  checkpointEvery: 2,
  learningRate: 0.02,
  ...extra,
});
