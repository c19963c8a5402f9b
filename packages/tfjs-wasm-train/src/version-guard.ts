import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import semver from 'semver';

/**
 * The versions of @tensorflow/tfjs-backend-wasm the multi-threaded start-up was written and tested
 * against. It parses the package's bundle and reaches into the Emscripten module's private thread
 * pool, neither of which is a public interface: any other version starts single-threaded.
 */
export const THREADED_WASM_VERSIONS = '>=4.22.0 <4.23.0';

/** The version of @tensorflow/tfjs-backend-wasm that Node resolves from this package. */
export function installedWasmVersion(): string {
  const manifest = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

export interface ThreadedWasmSupport {
  /** Whether the multi-threaded start-up may run with this version. */
  supported: boolean;
  /** The version checked. */
  version: string;
  /** The one-line message to print when it is not supported (undefined when it is). */
  message?: string;
}

/** Whether the multi-threaded start-up supports this version of @tensorflow/tfjs-backend-wasm (the installed one by default). */
export function threadedWasmSupport(version: string = installedWasmVersion()): ThreadedWasmSupport {
  if (semver.satisfies(version, THREADED_WASM_VERSIONS)) return { supported: true, version };
  return {
    supported: false,
    version,
    message: `tfjs-wasm-train: @tensorflow/tfjs-backend-wasm ${version} is installed; the multi-threaded start-up supports ${THREADED_WASM_VERSIONS} only, so wasm runs on 1 thread`,
  };
}
