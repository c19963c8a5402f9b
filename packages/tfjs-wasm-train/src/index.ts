export { BACKEND_NAMES, type BackendName, type InitBackendOptions, type NativeKernelsState, initBackend, nativeKernelsState, wasmThreadCount } from './select.js';
export { FASTER_GRADIENTS, registerFasterGradients } from './gradients.js';
export { WASM_GRADIENT_KERNELS, registerWasmGradientKernels } from './wasm-gradients.js';
export { MAX_WASM_THREADS, type ThreadedWasmOptions, startThreadedWasm } from './wasm-threads.js';
export { THREADED_WASM_VERSIONS, type ThreadedWasmSupport, installedWasmVersion, threadedWasmSupport } from './version-guard.js';
