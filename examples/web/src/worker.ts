// The page's inference worker: picks the backend, loads the export (with progress), and turns a
// picked file into a class map, mask and overlay, off the page's thread. One run at a time; a run
// stops at its next checkpoint (between reading, decoding, windows and drawing) when cancelled.
import { readExportMetadata } from '@dropclass/core';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { FileProblem, fitWithin, inspectImageFile, undecodable } from './inspect.js';
import { DECODE_LIMIT, type Plan, type SizeRule, planInference, resizeNearest } from './plan.js';
import { BACKEND_ORDER, PREVIEW_SIDE, type BackendInfo, type BackendName, type BackendTry, type ExportMetadata, type FromWorker, type InitRequest, type RunRequest, type ToWorker } from './protocol.js';

const post = (message: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(message, transfer);

/** Renderer and adapter names of software rasterisers: a GPU backend on one is far slower than wasm. */
export const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|lavapipe|software|basic render|mesa offscreen|warp/i;

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}

/** Why WebGPU should not be used here, or undefined when it has a hardware adapter (detail: the adapter). */
async function webgpuCheck(): Promise<{ skip?: string; detail: string }> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
  if (!gpu) return { skip: 'navigator.gpu is absent: this browser offers no WebGPU here', detail: '' };
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) return { skip: 'navigator.gpu.requestAdapter() gave no adapter (no usable GPU, or WebGPU is disabled)', detail: '' };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'an unnamed adapter';
  if (adapter.isFallbackAdapter || info.isFallbackAdapter || SOFTWARE_RENDERER.test(name)) {
    return { skip: `the adapter is a software fallback (${name}), slower than wasm`, detail: `software adapter ${name}` };
  }
  return { detail: `adapter ${name}` };
}

/** The WebGL renderer's name (unmasked where the browser allows), or undefined without WebGL 2. */
function webglRenderer(): string | undefined {
  const canvas = new OffscreenCanvas(1, 1);
  const gl = canvas.getContext('webgl2') as WebGL2RenderingContext | null;
  if (!gl) return undefined;
  const debug = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return renderer;
}

/** Sets the first backend of the order that this browser runs on hardware (or the one asked for), and says why the others were passed over. */
async function pickBackend(request: InitRequest): Promise<BackendInfo> {
  const forced = request.backend;
  const order: BackendName[] = forced ? [forced] : BACKEND_ORDER;
  const tried: BackendTry[] = [];
  setWasmPaths(request.wasmUrl);
  const cores = navigator.hardwareConcurrency || 1;
  const threads = Math.min(8, request.threads ?? cores);
  setThreadsCount(threads);
  // tfjs-backend-wasm 4.22 caps the threads at half of navigator.hardwareConcurrency (it assumes two
  // hardware threads per core) whatever setThreadsCount asks, so that a 2-core machine gets one
  // thread. This worker's own navigator reports twice the count asked for, so that the count is
  // the one asked for; the threaded build has 8 workers ready.
  if (threads > Math.floor(cores / 2)) Object.defineProperty(navigator, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
  for (const name of order) {
    let detail = '';
    if (name === 'webgpu') {
      const check = await webgpuCheck();
      detail = check.detail;
      if (check.skip && !(forced && check.detail)) {
        tried.push({ name, outcome: 'skipped', detail: check.skip });
        continue;
      }
    } else if (name === 'webgl') {
      const renderer = webglRenderer();
      if (!renderer) {
        tried.push({ name, outcome: 'skipped', detail: 'no WebGL 2 context on an OffscreenCanvas in this browser' });
        continue;
      }
      const software = SOFTWARE_RENDERER.test(renderer);
      detail = `${software ? 'software ' : ''}renderer ${renderer}`;
      if (software && !forced) {
        tried.push({ name, outcome: 'skipped', detail: `the renderer is a software one (${renderer}), slower than wasm` });
        continue;
      }
    }
    try {
      if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') returned false`);
      await tf.ready();
      // A first kernel: a backend that registers but cannot compute fails here, not in the first image.
      const sum = tf.tidy(() => tf.sum(tf.add(tf.ones([2, 2]), 1)));
      const value = (await sum.data())[0];
      sum.dispose();
      if (value !== 8) throw new Error(`a test sum gave ${value} instead of 8`);
    } catch (error) {
      tried.push({ name, outcome: 'failed', detail: `it did not start: ${error instanceof Error ? error.message : String(error)}` });
      continue;
    }
    let label: string = name;
    let used = detail;
    let wasmThreads: number | undefined;
    if (name === 'wasm') {
      wasmThreads = getThreadsCount();
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? ', SIMD' : '';
      label = `wasm (${wasmThreads} thread${wasmThreads === 1 ? '' : 's'}${simd})`;
      used = self.crossOriginIsolated
        ? `${wasmThreads} thread${wasmThreads === 1 ? '' : 's'} on ${cores} logical cores${simd}`
        : '1 thread: the page is not cross-origin isolated (its server sends no Cross-Origin-Opener-Policy / Cross-Origin-Embedder-Policy headers), so the threaded wasm cannot run';
    } else if (detail) {
      label = `${name} (${detail.replace(/^adapter |^renderer /, '')})`;
    }
    tried.push({ name, outcome: 'used', detail: used });
    return { name, label, tried, threads: wasmThreads, crossOriginIsolated: self.crossOriginIsolated };
  }
  const error = new Error(`no backend started: ${tried.map((t) => `${t.name}: ${t.detail}`).join('; ')}`);
  throw error;
}

/** fetch, reporting the bytes of each file as they arrive. */
function countingFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  return fetch(input, init).then((response) => {
    if (!response.ok || !response.body) return response;
    const file = decodeURIComponent(new URL(response.url || String(input)).pathname.split('/').pop() ?? '');
    const total = Number(response.headers.get('content-length') ?? 0);
    let loaded = 0;
    let last = 0;
    const counted = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          loaded += chunk.byteLength;
          const now = performance.now();
          if (now - last > 50) {
            last = now;
            post({ type: 'progress', file, loaded, total });
          }
          controller.enqueue(chunk);
        },
        flush() {
          post({ type: 'progress', file, loaded, total: total || loaded });
        },
      }),
    );
    return new Response(counted, { status: response.status, statusText: response.statusText, headers: response.headers });
  });
}

class Cancelled extends Error {
  constructor(readonly at: string) {
    super(`cancelled ${at}`);
  }
}

let model: tf.LayersModel | undefined;
let meta: ExportMetadata;
let rule: SizeRule;
let backend: BackendInfo;
/** Model input sizes run so far: on WebGL and WebGPU a new size compiles its kernels. */
const seenSizes = new Set<string>();
const cancelled = new Set<number>();
/** The last result's full-size mask, for a {@link MaskRequest}. */
let lastMask: { id: number; width: number; height: number; mask: Uint8ClampedArray<ArrayBuffer> } | undefined;

/**
 * Class map of `pixels` (normalised, padded bottom-right with zeros to `inputWidth` x `inputHeight`,
 * logits upsampled when the export's stride is above 1, argmax), for the part `keep` of it.
 */
async function segment(pixels: ImageData, inputWidth: number, inputHeight: number, keep = { x: 0, y: 0, width: pixels.width, height: pixels.height }): Promise<Int32Array> {
  seenSizes.add(`${inputWidth}x${inputHeight}`);
  const classMap = tf.tidy(() => {
    const rgb = tf.cast(tf.browser.fromPixels(pixels, 3), 'float32');
    const normalised = tf.div(tf.sub(rgb, meta.input.mean), meta.input.std);
    const padded = tf.pad(normalised, [[0, inputHeight - pixels.height], [0, inputWidth - pixels.width], [0, 0]]);
    let logits = model!.predict(tf.expandDims(padded, 0)) as tf.Tensor4D;
    if (meta.output.stride !== 1) logits = tf.image.resizeBilinear(logits, [inputHeight, inputWidth], false, true);
    return tf.slice(tf.argMax(logits, -1), [0, keep.y, keep.x], [1, keep.height, keep.width]);
  });
  try {
    return (await classMap.data()) as Int32Array;
  } finally {
    classMap.dispose();
  }
}

/** The RGBA pixels of a bitmap, as decoded (no colour conversion: the model sees the file's own values, as in Node). */
function pixelsOf(bitmap: ImageBitmap): { context: OffscreenCanvasRenderingContext2D; pixels: ImageData } {
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  return { context, pixels: context.getImageData(0, 0, bitmap.width, bitmap.height) };
}

const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function describe(plan: Plan): string {
  switch (plan.kind) {
    case 'whole':
      return `one pass at ${plan.inputWidth}x${plan.inputHeight}`;
    case 'downscale':
      return `downscaled to ${plan.scaledWidth}x${plan.scaledHeight}`;
    default:
      return `${plan.tiles.length} windows of ${plan.window}x${plan.window}`;
  }
}

async function run(request: RunRequest): Promise<void> {
  const { id, name } = request;
  const checkpoint = async (at: string) => {
    await nextTask(); // lets a cancel message in
    if (cancelled.has(id)) throw new Cancelled(at);
  };
  const progress = (text: string, done?: number, total?: number) => post({ type: 'running', id, text, done, total });
  let bitmap: ImageBitmap | undefined;
  lastMask = undefined;
  try {
    await checkpoint('before it started');
    progress('reading the file');
    const start = performance.now();
    const bytes = new Uint8Array(await request.file.arrayBuffer());
    const info = await inspectImageFile(bytes, name);
    await checkpoint('after reading the file');
    progress(`decoding the ${info.format}`);
    try {
      bitmap = await createImageBitmap(request.file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch (error) {
      throw undecodable(name, info, error);
    }
    const { width, height } = bitmap;
    if (width * height > DECODE_LIMIT) {
      throw new FileProblem(
        'too-large',
        `${name} is ${width}x${height} (${((width * height) / 1e6).toFixed(1)} megapixels); the page decodes images of at most ${DECODE_LIMIT / 1e6} megapixels: scale it down (to ${fitWithin(width, height, DECODE_LIMIT)} or less) and pick that`,
      );
    }
    const { context, pixels } = pixelsOf(bitmap);
    const decodeMs = performance.now() - start;
    await checkpoint('after decoding');

    const plan = planInference(width, height, rule, { mode: request.large, limit: request.limit, window: request.window });
    const sizesBefore = new Set(seenSizes);
    progress(`segmenting on ${backend.name}: ${describe(plan)}`);
    const inferenceStart = performance.now();
    let classes: Uint16Array;
    if (plan.kind === 'whole') {
      classes = Uint16Array.from(await segment(pixels, plan.inputWidth, plan.inputHeight));
    } else if (plan.kind === 'downscale') {
      const scaled = await createImageBitmap(bitmap, { resizeWidth: plan.scaledWidth, resizeHeight: plan.scaledHeight, resizeQuality: 'high' });
      const small = pixelsOf(scaled).pixels;
      scaled.close();
      const smallClasses = Uint16Array.from(await segment(small, plan.inputWidth, plan.inputHeight));
      classes = resizeNearest(smallClasses, plan.scaledWidth, plan.scaledHeight, width, height);
    } else {
      classes = new Uint16Array(width * height);
      for (const [i, tile] of plan.tiles.entries()) {
        await checkpoint(`after ${i} of ${plan.tiles.length} windows`);
        progress(`segmenting on ${backend.name}: window ${i + 1} of ${plan.tiles.length} (${plan.window}x${plan.window})`, i, plan.tiles.length);
        const region = context.getImageData(tile.x, tile.y, Math.min(tile.inputWidth, width - tile.x), Math.min(tile.inputHeight, height - tile.y));
        const { x0, x1, y0, y1 } = tile.keep;
        const part = await segment(region, tile.inputWidth, tile.inputHeight, { x: x0 - tile.x, y: y0 - tile.y, width: x1 - x0, height: y1 - y0 });
        for (let y = y0; y < y1; y++) classes.set(part.subarray((y - y0) * (x1 - x0), (y - y0 + 1) * (x1 - x0)), y * width + x0);
      }
    }
    const inferenceMs = performance.now() - inferenceStart;
    await checkpoint('after the prediction');

    const renderStart = performance.now();
    const image = pixels.data;
    const mask = new Uint8ClampedArray(image.length);
    const overlay = new Uint8ClampedArray(image.length);
    const counts = new Array<number>(meta.numClasses).fill(0);
    const palette = meta.palette;
    for (let i = 0; i < classes.length; i++) {
      const c = classes[i];
      counts[c]++;
      const colour = palette[c];
      const p = 4 * i;
      for (let k = 0; k < 3; k++) {
        mask[p + k] = colour[k];
        overlay[p + k] = Math.round(0.5 * image[p + k] + 0.5 * colour[k]);
      }
      mask[p + 3] = 255;
      overlay[p + 3] = 255;
    }
    // The page's thread only draws bitmaps: the pixels are put on canvases here.
    const toBitmap = (data: Uint8ClampedArray<ArrayBuffer>) => {
      const canvas = new OffscreenCanvas(width, height);
      canvas.getContext('2d')!.putImageData(new ImageData(data, width, height), 0, 0);
      return canvas.transferToImageBitmap();
    };
    const scale = Math.min(1, PREVIEW_SIDE / Math.max(width, height));
    const preview = async (full: ImageBitmap, quality: ResizeQuality) => {
      if (scale === 1) return full;
      const resized = await createImageBitmap(full, { resizeWidth: Math.max(1, Math.round(width * scale)), resizeHeight: Math.max(1, Math.round(height * scale)), resizeQuality: quality });
      full.close();
      return resized;
    };
    const maskBitmap = await preview(toBitmap(mask), 'pixelated');
    const overlayBitmap = await preview(toBitmap(overlay), 'high');
    const imageBitmap = await preview(bitmap, 'high');
    bitmap = undefined;
    lastMask = { id, width, height, mask };
    const renderMs = performance.now() - renderStart;
    const memory = tf.memory();
    post(
      {
        type: 'result',
        result: {
          id,
          name,
          width,
          height,
          plan,
          format: info.format,
          note: info.note,
          image: imageBitmap,
          mask: maskBitmap,
          overlay: overlayBitmap,
          counts,
          decodeMs,
          inferenceMs,
          renderMs,
          newInputSizes: [...seenSizes].filter((s) => !sizesBefore.has(s)),
          tensors: memory.numTensors,
          tensorBytes: memory.numBytes,
        },
      },
      [imageBitmap, maskBitmap, overlayBitmap],
    );
  } catch (error) {
    if (error instanceof Cancelled) post({ type: 'cancelled', id, at: error.at });
    else if (error instanceof FileProblem) post({ type: 'failed', id, kind: 'file', problem: error.kind, message: error.message });
    else {
      const message = error instanceof Error ? error.message : String(error);
      post({ type: 'failed', id, kind: 'backend', message: `${name} failed on the ${backend.label} backend: ${message}` });
    }
  } finally {
    bitmap?.close();
    cancelled.delete(id);
  }
}

async function init(request: InitRequest): Promise<void> {
  try {
    post({ type: 'stage', text: 'starting a backend' });
    backend = await pickBackend(request);
    post({ type: 'stage', text: `loading the model on ${backend.label}` });
    try {
      model = await tf.loadLayersModel(tf.io.http(request.modelUrl, { fetchFunc: countingFetch }));
    } catch (error) {
      throw new Error(
        `could not load the model ${request.modelUrl}: ${error instanceof Error ? error.message : String(error)}. ` +
          'Export one into the page\'s model/ folder with `dropclass export`, or give its address with ?model=',
      );
    }
    const metadata = readExportMetadata(model);
    if (!metadata) {
      throw new Error(`${request.modelUrl} has no dropclass-export/1 metadata (userDefinedMetadata.dropclass): export the model with \`dropclass export\``);
    }
    meta = metadata;
    rule = { sizeMultiple: meta.input.sizeMultiple, minSize: meta.input.minSize };
    post({ type: 'stage', text: `compiling the model on ${backend.label}` });
    const warmup = performance.now();
    await segment(new ImageData(meta.input.minSize, meta.input.minSize), meta.input.minSize, meta.input.minSize);
    post({ type: 'ready', backend, metadata: meta, tensors: tf.memory().numTensors, warmupMs: performance.now() - warmup });
  } catch (error) {
    post({ type: 'init-failed', message: error instanceof Error ? error.message : String(error) });
  }
}

async function maskPng(id: number): Promise<void> {
  if (lastMask?.id !== id) {
    post({ type: 'mask-png', id, message: 'that mask is no longer held (another image was picked since): pick the image again' });
    return;
  }
  const { width, height, mask } = lastMask;
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext('2d')!.putImageData(new ImageData(mask, width, height), 0, 0);
  post({ type: 'mask-png', id, png: await canvas.convertToBlob({ type: 'image/png' }) });
}

let queue: Promise<void> = Promise.resolve();
self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === 'init') queue = queue.then(() => init(message));
  else if (message.type === 'run') queue = queue.then(() => run(message));
  else if (message.type === 'cancel') cancelled.add(message.id);
  else if (message.type === 'mask-png') queue = queue.then(() => maskPng(message.id));
};
