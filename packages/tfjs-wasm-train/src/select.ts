import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { registerFasterGradients } from './gradients.js';
import { installLeanBackprop } from './lean-backprop.js';
import { threadedWasmSupport } from './version-guard.js';
import { registerWasmGradientKernels } from './wasm-gradients.js';
import { MAX_WASM_THREADS, startThreadedWasm } from './wasm-threads.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface InitBackendOptions {
  /** Force a backend; otherwise `DROPCLASS_BACKEND`, otherwise the first available of tensorflow, wasm, cpu. */
  backend?: BackendName;
  /** Do not print the chosen backend. */
  quiet?: boolean;
  /**
   * Threads to compute with on wasm (1 to 8); otherwise `DROPCLASS_THREADS`, otherwise the
   * machine's available parallelism: the native kernels' where they run (wasm's own kernels then run
   * on 1 thread), else wasm's. Fixed once the backend has started.
   */
  threads?: number;
}

const INSTALL_HINT: Record<BackendName, string> = {
  tensorflow: 'install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU) next to @dropclass/tfjs-wasm-train',
  wasm: 'install @tensorflow/tfjs-backend-wasm (it ships its .wasm binaries inside the package)',
  cpu: 'install @tensorflow/tfjs-backend-cpu',
};

let wasmThreads = 0;

/** What became of the native kernels when wasm started: running, or why not. */
export type NativeKernelsState = { active: true; isa: string; threads: number } | { active: false; reason: string };

let nativeState: NativeKernelsState | undefined;

/** The native kernels' state on wasm (undefined before wasm has started in this process). */
export function nativeKernelsState(): NativeKernelsState | undefined {
  return nativeState;
}

/** The package of native kernels this package registers where it is installed; not a dependency of this one (it depends on this package). */
export const NATIVE_KERNELS_PACKAGE = '@dropclass/native-kernels';

/** What this package uses of `@dropclass/native-kernels`. */
interface NativeKernelsModule {
  registerNativeKernels(options: { threads?: number }): NativeKernelsState;
  nativeKernelsUnavailable(): string | undefined;
}

/**
 * `@dropclass/native-kernels` where it is installed, loaded synchronously (Node's require of an ES
 * module): `initBackend` asks it whether it will run before wasm starts, and nothing may run between
 * the question and the start-up (with an await there, a wasm start-up that had failed just before
 * left the backend to its single-threaded build).
 */
function nativeKernelsModule(): NativeKernelsModule | undefined {
  try {
    // A specifier in a variable: the native kernels depend on this package, not the other way round.
    const name: string = NATIVE_KERNELS_PACKAGE;
    return createRequire(import.meta.url)(name) as NativeKernelsModule;
  } catch {
    return undefined;
  }
}

/** Whether the native kernels are installed, built and load here. */
function nativeKernelsWillRun(): boolean {
  const module = nativeKernelsModule();
  return module !== undefined && module.nativeKernelsUnavailable() === undefined;
}

/**
 * Puts `@dropclass/native-kernels` in front of wasm's convolutions and matrix products when it is
 * installed and built (it registers its kernels as overrides of this package, at
 * `OVERRIDE_PRIORITY.native`); wasm keeps its own kernels otherwise. Never throws.
 */
function registerNative(threads: number): NativeKernelsState {
  const module = nativeKernelsModule();
  if (!module) return { active: false, reason: 'not installed (npm install @dropclass/native-kernels)' };
  const status = module.registerNativeKernels({ threads });
  return status.active ? { active: true, isa: status.isa, threads: status.threads } : status;
}

/** How the announcement names the native kernels. */
function describeNative(state: NativeKernelsState | undefined): string {
  if (!state) return '';
  return state.active ? `, native kernels (${state.isa}, ${state.threads} thread${state.threads === 1 ? '' : 's'})` : `; native kernels off: ${state.reason}`;
}

/** Threads wasm's own kernels run with (0 before wasm has started; 1 where the native kernels run, which have their own). */
export function wasmThreadCount(): number {
  return wasmThreads;
}

function requestedThreads(option: number | undefined): number {
  const fromEnv = process.env.DROPCLASS_THREADS?.trim();
  const value = option ?? (fromEnv ? Number(fromEnv) : Math.min(availableParallelism(), MAX_WASM_THREADS));
  if (!Number.isInteger(value) || value < 1 || value > MAX_WASM_THREADS) {
    throw new Error(
      `threads must be a whole number from 1 to ${MAX_WASM_THREADS}, got ${JSON.stringify(option ?? fromEnv)}${option === undefined ? ' (from DROPCLASS_THREADS)' : ''}`,
    );
  }
  return value;
}

/** Starts wasm with `threads` threads, or single-threaded when one is asked for or threads cannot start. */
async function startWasm(threads: number): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  registerWasmGradientKernels();
  // Started earlier in this process: its thread pool is fixed, so it is only switched back to.
  if ('wasm' in tf.engine().registry) return tf.setBackend('wasm');
  // The multi-threaded start-up relies on the package's internals: other versions run on 1 thread.
  const support = threads > 1 ? threadedWasmSupport() : undefined;
  if (support && !support.supported) console.error(support.message);
  const started = support?.supported ? await startThreadedWasm({ threads }) : 0;
  if (started > 0) {
    wasmThreads = started;
    return true;
  }
  if (support?.supported) console.error(`tfjs-wasm-train: the multi-threaded wasm build did not start; running wasm on 1 thread`);
  if (!(await tf.setBackend('wasm'))) return false;
  wasmThreads = wasm.getThreadsCount();
  return true;
}

/**
 * Starts wasm, then puts the native kernels in front of its own where they are installed. Where the
 * native kernels run, they take the threads and wasm runs its own kernels (the element-wise rest of
 * a step) on 1 thread: wasm's idle workers took about 0.8 ms to wake for each of its threaded
 * kernels between native ones (a ReLU of [2,8,8,512] in a DeepLabV3 step took 0.8 ms, on 1 thread
 * 0.02), and the sums of its kernels no longer depend on the threads.
 */
async function startWasmWithNative(threads: number): Promise<boolean> {
  const started = await startWasm(nativeKernelsWillRun() ? 1 : threads);
  if (started) nativeState ??= registerNative(threads);
  return started;
}

/** Loads a backend's package; false when it is not installed or cannot start here. */
async function load(name: BackendName, threads: number): Promise<boolean> {
  const candidates =
    name === 'tensorflow'
      ? ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']
      : name === 'wasm'
        ? ['@tensorflow/tfjs-backend-wasm']
        : ['@tensorflow/tfjs-backend-cpu'];
  for (const pkg of candidates) {
    try {
      if (name === 'wasm') return await startWasmWithNative(threads);
      await import(pkg);
      return await tf.setBackend(name);
    } catch {
      // absent optional backends are normal: try the next candidate
    }
  }
  return false;
}

let announced: string | undefined;

/**
 * tfjs-layers registers tfjs's stock gradients when it is loaded; loaded later, it would put back
 * the three that `registerFasterGradients` replaces. Loaded here first when it is installed.
 */
async function loadStockGradients(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-layers');
  } catch {
    // not installed: tfjs-core alone has no stock gradients to put back
  }
}

/**
 * Picks the compute backend once per process: `tensorflow` (tfjs-node-gpu, then tfjs-node) when
 * installed, else `wasm` (the embedded default), else `cpu`. A forced choice that is not available
 * fails with what to install. Prints the choice once, on stderr.
 *
 * Importing `@dropclass/tfjs-wasm-train` leaves tfjs as it is; this call is where the package
 * changes tfjs globally: it loads tfjs-layers when installed (it registers tfjs's stock gradients),
 * registers the faster `FusedBatchNorm`, `Sum` and `Mean` gradients (`registerFasterGradients`),
 * makes the backward pass free each gradient and saved tensor once used (`installLeanBackprop`)
 * and, for wasm, the gradient and training kernels (`registerWasmGradientKernels`), and the
 * native convolutions and matrix products of `@dropclass/native-kernels` where that is installed
 * and built (`DROPCLASS_NATIVE=0` leaves them out; `nativeKernelsState` tells what happened).
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendName> {
  const fromEnv = process.env.DROPCLASS_BACKEND?.trim();
  const forced = options.backend ?? (fromEnv ? (fromEnv as BackendName) : undefined);
  if (forced !== undefined && !BACKEND_NAMES.includes(forced)) {
    throw new Error(
      `unknown backend ${JSON.stringify(forced)}${options.backend ? '' : ' (from DROPCLASS_BACKEND)'}; expected one of ${BACKEND_NAMES.join(', ')}`,
    );
  }
  const threads = requestedThreads(options.threads);
  await loadStockGradients();
  registerFasterGradients();
  installLeanBackprop();
  const order = forced ? [forced] : BACKEND_NAMES;
  for (const name of order) {
    if (tf.getBackend() === name && tf.findBackend(name)) {
      // A wasm backend started by the caller still needs the kernels that let it train.
      if (name === 'wasm') {
        registerWasmGradientKernels();
        nativeState ??= registerNative(threads);
      }
      return name;
    }
    if (await load(name, threads)) {
      await tf.ready();
      if (!options.quiet && announced !== name) {
        console.error(`tfjs-wasm-train: backend ${name}${name === 'wasm' ? ` (${wasmThreads} thread${wasmThreads === 1 ? '' : 's'})${describeNative(nativeState)}` : ''}`);
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
