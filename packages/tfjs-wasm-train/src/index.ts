export { BACKEND_NAMES, type BackendName, type InitBackendOptions, NATIVE_KERNELS_PACKAGE, type NativeKernelsState, initBackend, nativeKernelsState, wasmThreadCount } from './select.js';
export { FASTER_GRADIENTS, registerFasterGradients } from './gradients.js';
export { LEAN_BACKPROP_VERSIONS, installLeanBackprop } from './lean-backprop.js';
export { type KernelCall, type KernelOverride, OVERRIDE_PRIORITY, baseKernel, kernelOverrides, registerKernelOverrides, unregisterKernelOverrides } from './kernel-overrides.js';
export { OVERRIDE_SOURCE, WASM_GRADIENT_KERNELS, registerWasmGradientKernels } from './wasm-gradients.js';
export { MAX_WASM_THREADS, type ThreadedWasmOptions, startThreadedWasm } from './wasm-threads.js';
export { THREADED_WASM_VERSIONS, type ThreadedWasmSupport, installedWasmVersion, threadedWasmSupport } from './version-guard.js';
