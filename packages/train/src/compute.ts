import { hostname } from 'node:os';
import { nativeKernelsState, wasmThreadCount } from '@dropclass/tfjs-wasm-train';
import * as tf from '@tensorflow/tfjs-core';
import { type RunSession, readRunMarker } from './run-dir.js';

/** What computes in this process: backend, threads and kernels (the same seed and config can give other bits on others). */
export function computeDescription(): Pick<RunSession, 'backend' | 'threads' | 'kernels'> {
  const backend = tf.getBackend();
  if (backend !== 'wasm') return { backend, threads: 1, kernels: backend };
  const native = nativeKernelsState();
  const threads = wasmThreadCount();
  return { backend, threads, kernels: native?.active ? `native (${native.isa}, ${native.threads} thread${native.threads === 1 ? '' : 's'})` : 'wasm' };
}

/**
 * This training session, for the run's marker. Where an earlier session of the run computed with
 * other kernels, or with other threads on wasm's own kernels (whose sums depend on the thread
 * split), the log says that the result may differ in its last bits from an uninterrupted run.
 */
export async function computeSession(dir: string, fromStep: number, log: (line: string) => void): Promise<RunSession> {
  const session: RunSession = { started: new Date().toISOString(), fromStep, host: hostname(), pid: process.pid, ...computeDescription() };
  const previous = (await readRunMarker(dir))?.sessions.at(-1);
  if (previous && fromStep > 0) {
    // The native kernels' sums do not depend on their threads: only their instruction set counts.
    const kind = (kernels: string) => kernels.replace(/, \d+ threads?\)$/, ')');
    const native = session.kernels.startsWith('native');
    const changed = previous.backend !== session.backend || kind(previous.kernels) !== kind(session.kernels) || (!native && previous.threads !== session.threads);
    if (changed) {
      log(
        `note: steps before ${fromStep} ran on ${previous.backend} with ${previous.kernels} kernels and ${previous.threads} thread(s), these on ${session.backend} with ${session.kernels} kernels and ${session.threads}: ` +
          'the result may differ in its last bits from a run that was not interrupted (see "Determinism" in the README)',
      );
    }
  }
  return session;
}
