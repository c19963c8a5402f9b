import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import { registerWasmGradientKernels } from './wasm-gradients.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface InitBackendOptions {
  /** Force a backend; otherwise `DROPCLASS_BACKEND`, otherwise the first available of tensorflow, wasm, cpu. */
  backend?: BackendName;
  /** Do not print the chosen backend. */
  quiet?: boolean;
}

const INSTALL_HINT: Record<BackendName, string> = {
  tensorflow: 'install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU) next to @dropclass/core',
  wasm: 'install @tensorflow/tfjs-backend-wasm (it ships its .wasm binaries inside the package)',
  cpu: 'install @tensorflow/tfjs-backend-cpu',
};

/** Loads a backend's package; false when it is not installed or cannot start here. */
async function load(name: BackendName): Promise<boolean> {
  const candidates =
    name === 'tensorflow'
      ? ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']
      : name === 'wasm'
        ? ['@tensorflow/tfjs-backend-wasm']
        : ['@tensorflow/tfjs-backend-cpu'];
  for (const pkg of candidates) {
    try {
      await import(pkg);
      if (name === 'wasm') registerWasmGradientKernels();
      return await tf.setBackend(name);
    } catch {
      // absent optional backends are normal: try the next candidate
    }
  }
  return false;
}

let announced: string | undefined;

/**
 * Picks the compute backend once per process: `tensorflow` (tfjs-node-gpu, then tfjs-node) when
 * installed, else `wasm` (the embedded default), else `cpu`. A forced choice that is not available
 * fails with what to install. Prints the choice once, on stderr.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendName> {
  const fromEnv = process.env.DROPCLASS_BACKEND?.trim();
  const forced = options.backend ?? (fromEnv ? (fromEnv as BackendName) : undefined);
  if (forced !== undefined && !BACKEND_NAMES.includes(forced)) {
    throw new Error(
      `unknown backend ${JSON.stringify(forced)}${options.backend ? '' : ' (from DROPCLASS_BACKEND)'}; expected one of ${BACKEND_NAMES.join(', ')}`,
    );
  }
  const order = forced ? [forced] : BACKEND_NAMES;
  for (const name of order) {
    if (tf.getBackend() === name && tf.findBackend(name)) return name;
    if (await load(name)) {
      await tf.ready();
      if (!options.quiet && announced !== name) {
        console.error(`dropclass: backend ${name}`);
        announced = name;
      }
      return name;
    }
  }
  if (forced) {
    throw new Error(`backend "${forced}" was asked for but is not available: ${INSTALL_HINT[forced]}`);
  }
  throw new Error(`no tfjs backend could start: ${INSTALL_HINT.wasm}`);
}
