// Messages between the page (main.ts) and its inference worker (worker.ts).
import type { ExportMetadata } from '@dropclass/core';
import type { FileProblemKind } from './inspect.js';
import type { LargeImageMode, Plan } from './plan.js';

/** What `dropclass export` writes into model.json (userDefinedMetadata.dropclass). */
export type { ExportMetadata };

/**
 * Long side of the views the page shows. Larger canvases cost the page's own thread (drawing and
 * compositing three of 4000x3000 took about 0.8 s of it in headless Chromium without a GPU); the
 * views are 256 CSS pixels wide.
 */
export const PREVIEW_SIDE = 1024;

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export const BACKEND_ORDER: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** One backend the worker considered: used, passed over (and why), or failed to start (and why). */
export interface BackendTry {
  name: BackendName;
  outcome: 'used' | 'skipped' | 'failed';
  /** Why it was skipped or failed; for the one used, what it runs on (renderer, adapter, threads). */
  detail: string;
}

export interface BackendInfo {
  name: BackendName;
  /** The backend with what it runs on, for the page: "wasm (2 threads, SIMD)". */
  label: string;
  tried: BackendTry[];
  /** wasm only: threads in use. */
  threads?: number;
  /** The worker's own `crossOriginIsolated`. */
  crossOriginIsolated: boolean;
}

export interface InitRequest {
  type: 'init';
  modelUrl: string;
  wasmUrl: string;
  /** A backend to use instead of the automatic order (`?backend=`). */
  backend?: BackendName;
  /** wasm threads (`?threads=`); default every core, at most 8. */
  threads?: number;
}

export interface RunRequest {
  type: 'run';
  id: number;
  file: Blob;
  name: string;
  large: LargeImageMode;
  /** Overrides of the plan's limits (`?limit=`, `?window=`). */
  limit?: number;
  window?: number;
}

export interface CancelRequest {
  type: 'cancel';
  id: number;
}

/** The full-size mask of the last result, as a PNG. */
export interface MaskRequest {
  type: 'mask-png';
  id: number;
}

export type ToWorker = InitRequest | RunRequest | CancelRequest | MaskRequest;

export interface RunResult {
  id: number;
  name: string;
  width: number;
  height: number;
  plan: Plan;
  format: string;
  note?: string;
  /**
   * The image, the mask and the overlay to show (transferred): at full size up to
   * {@link PREVIEW_SIDE} pixels on the long side, resized to it above (the mask by nearest
   * neighbour); the full-size mask is asked for with a {@link MaskRequest}.
   */
  image: ImageBitmap;
  mask: ImageBitmap;
  overlay: ImageBitmap;
  /** Pixels of each class. */
  counts: number[];
  /** Milliseconds: reading and decoding the file; pixels to class map (every window, or the downscaled pass); mask and overlay. */
  decodeMs: number;
  inferenceMs: number;
  renderMs: number;
  /** Input sizes first seen in this run: on WebGL and WebGPU their kernels were compiled inside the time. */
  newInputSizes: string[];
  /** tf.memory() after the run: tensors alive (the model's weights) and bytes. */
  tensors: number;
  tensorBytes: number;
}

export type FromWorker =
  | { type: 'stage'; text: string }
  | { type: 'progress'; file: string; loaded: number; total: number }
  | { type: 'ready'; backend: BackendInfo; metadata: ExportMetadata; tensors: number; warmupMs: number }
  | { type: 'init-failed'; message: string }
  | { type: 'running'; id: number; text: string; done?: number; total?: number }
  | { type: 'result'; result: RunResult }
  | { type: 'cancelled'; id: number; at: string }
  | { type: 'mask-png'; id: number; png?: Blob; message?: string }
  /** `file`: the file was refused, the worker is fine. `backend`: the backend failed, the page restarts the worker. */
  | { type: 'failed'; id: number; kind: 'file' | 'backend'; problem?: FileProblemKind; message: string };
