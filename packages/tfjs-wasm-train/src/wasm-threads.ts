import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { threadedWasmSupport } from './version-guard.js';

/** tfjs-backend-wasm pre-creates this many workers; XNNPACK's thread pool takes at most that many. */
export const MAX_WASM_THREADS = 8;

const MAIN_SCRIPT_START = 'var WasmBackendModuleThreadedSimd';

export interface ThreadedWasmOptions {
  /** Threads for XNNPACK's pool, 2 to 8. */
  threads: number;
  /** Where the worker scripts are written during start-up; a fresh folder under the system's temporary folder by default. */
  scriptDir?: string;
  /**
   * How long the start-up may take before it is given up (60 s by default). A worker that dies
   * while loading would otherwise leave the start pending with nothing keeping the process alive.
   */
  startTimeoutMs?: number;
  /** Rewrites the pthread worker's script before it is written; tests use it to make a worker fail. */
  workerScript?: (text: string) => string;
}

/** Writes a file whole or not at all: a worker starting meanwhile never reads it half-written. */
function writeWhole(file: string, text: string): void {
  writeFileSync(`${file}.part`, text);
  renameSync(`${file}.part`, file);
}

/**
 * The bundle's own `var require$$N = require('x')` lines: the worker evaluates the module's glue
 * outside the bundle, where those names would otherwise be undefined.
 */
function bundleRequires(): string {
  const bundle = readFileSync(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'), 'utf8');
  return [...bundle.matchAll(/^var (require\$\$\d+) = require\('([^']+)'\);$/gm)].map((m) => `var ${m[1]} = require(${JSON.stringify(m[2])});`).join('\n');
}

/**
 * Starts tfjs-backend-wasm's multi-threaded build (it ships inside the package) in Node, where the
 * package only ever starts the single-threaded one. Three things stand in its way, each bridged for
 * the length of the start-up only: its pthread workers are handed `blob:` URLs, which Node's workers
 * cannot load (the scripts are written to files instead); the glue the workers evaluate names the
 * bundle's own module variables (they are declared in front of it); and the thread pool is capped
 * at half the logical cores (the core count is reported as twice `threads`).
 * Resolves to the threads the backend runs with, or 0, leaving no backend set, when anything fails,
 * so that the caller can start the single-threaded build. Only runs with the versions of
 * tfjs-backend-wasm in `THREADED_WASM_VERSIONS`: with any other it prints why on stderr and
 * resolves to 0 without touching the package.
 */
export async function startThreadedWasm(options: ThreadedWasmOptions): Promise<number> {
  const support = threadedWasmSupport();
  if (!support.supported) {
    console.error(support.message);
    return 0;
  }
  const threads = Math.min(Math.max(2, Math.floor(options.threads)), MAX_WASM_THREADS);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dir = options.scriptDir ?? join(os.tmpdir(), `tfjs-wasm-train-threads-${process.pid}`);
  const mainScript = join(dir, 'main.js');
  const workerScript = join(dir, 'worker.js');
  const texts = new WeakMap<Blob, string>();
  let workerText: string | undefined;
  const originals = { Blob: globalThis.Blob, createObjectURL: URL.createObjectURL, cpus: os.cpus };
  globalThis.Blob = class RecordingBlob extends originals.Blob {
    constructor(parts: ConstructorParameters<typeof Blob>[0] = [], blobOptions?: ConstructorParameters<typeof Blob>[1]) {
      super(parts, blobOptions);
      const text = parts.map(String).join('');
      texts.set(this, text);
      if (text.startsWith(MAIN_SCRIPT_START)) {
        mkdirSync(dir, { recursive: true });
        writeWhole(mainScript, `${bundleRequires()}\nvar commonjsGlobal = globalThis, _scriptDir;\n${text}`);
      }
    }
  };
  URL.createObjectURL = (blob: Blob) => {
    const text = texts.get(blob);
    if (text === undefined) return originals.createObjectURL(blob);
    // Each of the pool's eight workers asks for a URL of the same script, while the ones before it
    // are already reading the file: it is written once.
    if (workerText === undefined) {
      workerText = text;
      // The worker asks for a URL of the main script it was sent as a Blob: it gets the file's path.
      const script = `URL.createObjectURL = () => ${JSON.stringify(mainScript)};\nURL.revokeObjectURL = () => {};\n${text}`;
      writeWhole(workerScript, options.workerScript ? options.workerScript(script) : script);
    } else if (text !== workerText) {
      throw new Error('tfjs-backend-wasm asked for two different pthread worker scripts');
    }
    return workerScript;
  };
  os.cpus = () => {
    const cpus = originals.cpus();
    return Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]);
  };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  let started = false;
  // The start-up waits for every worker to load. The workers do not keep the process alive, so
  // this timer does; it also gives the start-up up if a worker never reports.
  let deadline: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    deadline = setTimeout(() => resolve(false), options.startTimeoutMs ?? 60_000);
  });
  try {
    started = await Promise.race([tf.setBackend('wasm'), timedOut]);
  } catch {
    started = false;
  } finally {
    clearTimeout(deadline);
    globalThis.Blob = originals.Blob;
    URL.createObjectURL = originals.createObjectURL;
    os.cpus = originals.cpus;
    // Every worker of the pool has read its scripts once the start-up is over (or given up).
    if (!options.scriptDir) rmSync(dir, { recursive: true, force: true });
  }
  if (started) {
    // The pool's threads wait for work forever; unreferenced, they do not keep the process alive.
    const pthreads = (tf.engine().registry.wasm as unknown as { wasm: { PThread: { runningWorkers: Worker[]; unusedWorkers: Worker[] } } }).wasm.PThread;
    for (const worker of [...pthreads.runningWorkers, ...pthreads.unusedWorkers]) worker.unref();
    return wasm.getThreadsCount();
  }
  // The backend's factory stays registered, so the next setBackend starts the single-threaded build
  // (and makes a start-up still pending obsolete).
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(1);
  return 0;
}
