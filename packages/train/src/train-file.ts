import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type BackendName, initBackend } from '@dropclass/tfjs-wasm-train';
import { ConfigError, loadRunConfig } from './config.js';
import { train } from './train.js';

export interface TrainFileOptions {
  /** The run directory (default: `runs/<config name>`). */
  out?: string;
  /** Continue the run in `out` from its newest checkpoint. */
  resume?: boolean;
  /** Remove what the run in `out` holds and train from the start. */
  fresh?: boolean;
  /** Overrides of the config's keys, `key=value` (values are JSON, or text). */
  set?: string[];
  /** Start from these weights: the config's `init.from`, with its parts (default backbone and classifier). */
  init?: string;
  backend?: BackendName;
  log: (line: string) => void;
}

/**
 * `dropclass train`: reads a run config file (with overrides), starts the backend and trains the run
 * into its directory. Returns whether the run was interrupted (a signal) before its schedule ended.
 */
export async function trainConfigFile(file: string, options: TrainFileOptions): Promise<{ interrupted: boolean }> {
  const config = await loadRunConfig(file, options.set);
  if (options.init) {
    if (!existsSync(options.init)) throw new ConfigError(`--init ${options.init} does not exist; give a finished run, a saved model or a .safetensors file`);
    config.init = { from: resolve(options.init), parts: config.init?.parts ?? ['backbone', 'classifier'] };
  }
  await initBackend({ backend: options.backend });
  const out = options.out ?? join('runs', basename(file, '.json'));
  const result = await train(config, { out, resume: options.resume, fresh: options.fresh, log: options.log, configFile: file });
  result.model.dispose();
  return { interrupted: !!result.interrupted };
}
