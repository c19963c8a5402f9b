/**
 * Native CPU kernels for training TensorFlow.js models on the wasm backend in Node: convolutions
 * (forward, input and filter gradients) and matrix products, compiled from C++ at install time and
 * run directly on the wasm heap with their own threads.
 */
import { loadAddon } from './addon.js';
import { registerOnWasm } from './wasm-kernels.js';

export { NATIVE_KERNELS, NATIVE_SOURCE } from './wasm-kernels.js';

/** What `registerNativeKernels` did. */
export type NativeKernelsStatus =
  | { active: true; isa: string; threads: number; kernels: string[] }
  | { active: false; reason: string };

let registered: NativeKernelsStatus | undefined;

/**
 * Registers the native kernels on the wasm backend through `@dropclass/tfjs-wasm-train`'s kernel
 * overrides (`registerKernelOverrides`, at `OVERRIDE_PRIORITY.native`: in front of wasm's kernels
 * and of that package's own, whichever registers first), once per process; later calls only change
 * the number of threads. Never throws: when the addon is not built, cannot load, is turned off
 * (`DROPCLASS_NATIVE=0`) or the CPU lacks its instructions, it returns why, and wasm keeps its kernels.
 *
 * @param options.threads threads the kernels use (default 1)
 */
export function registerNativeKernels(options: { threads?: number } = {}): NativeKernelsStatus {
  const { addon, reason } = loadAddon();
  if (!addon) return { active: false, reason };
  addon.setThreads(options.threads ?? 1);
  if (!registered) registered = { active: true, isa: addon.isa, threads: addon.threads(), kernels: registerOnWasm(addon) };
  else if (registered.active) registered = { ...registered, threads: addon.threads() };
  return registered;
}

/** Whether the native kernels are built and load here, without registering them: `undefined` when they are, else why not. */
export function nativeKernelsUnavailable(): string | undefined {
  return loadAddon().reason;
}
