import * as tf from '@tensorflow/tfjs-core';

/** The package that starts a backend able to train; `@dropclass/core` itself depends on no backend. */
export const ENGINE_PACKAGE = '@dropclass/tfjs-wasm-train';

export interface StartBackendOptions {
  /** A backend by name (`tensorflow`, `wasm`, `cpu`); otherwise the engine's choice, or the backend tfjs has set. */
  backend?: string;
  /** Do not print the chosen backend. */
  quiet?: boolean;
}

/** What this package uses of the engine. */
export interface Engine {
  initBackend(options: StartBackendOptions): Promise<string>;
}

/** The engine package when it is installed, else undefined. */
async function loadEngine(): Promise<Engine | undefined> {
  try {
    // A specifier in a variable: the engine is an optional peer, not a dependency of this package.
    const name: string = ENGINE_PACKAGE;
    return (await import(name)) as Engine;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((error as Error).message).includes(ENGINE_PACKAGE)) return undefined;
    throw error;
  }
}

/**
 * Starts a compute backend for this package's own command (`dropclass-reference`) and conformance
 * suite: through `@dropclass/tfjs-wasm-train`'s `initBackend` when it is installed, else the
 * backend named (or named by `DROPCLASS_BACKEND`), else the one tfjs has set (a tfjs backend
 * package the caller imported). Fails with what to install when there is none. Resolves to the
 * backend's name. `load` finds the engine (tests give one of their own).
 */
export async function startBackend(options: StartBackendOptions = {}, load: () => Promise<Engine | undefined> = loadEngine): Promise<string> {
  const engine = await load();
  if (engine) return engine.initBackend(options);
  const hint = `install ${ENGINE_PACKAGE} (or import a tfjs backend package such as @tensorflow/tfjs-backend-cpu before this runs)`;
  const backend = options.backend ?? (process.env.DROPCLASS_BACKEND?.trim() || undefined);
  if (backend !== undefined) {
    if (tf.getBackend() === backend) return backend;
    const started = tf.findBackendFactory(backend) !== null && (await tf.setBackend(backend));
    if (!started) throw new Error(`backend "${backend}" is not available: ${hint}`);
    return backend;
  }
  try {
    await tf.ready();
  } catch {
    throw new Error(`no tfjs backend is registered: ${hint}`);
  }
  return tf.getBackend();
}
