// The DropClass web demo's page: hands picked or dropped images to the inference worker
// (worker.ts), one run at a time, and shows the mask, the overlay, the class legend and the times.
// A pick during a run cancels that run and runs next; a pick while another waits replaces it.
import { SINGLE_PASS_LIMIT, WINDOW, formatShare, type LargeImageMode, type Plan } from './plan.js';
import { type BackendInfo, type BackendName, type ExportMetadata, type FromWorker, type InitRequest, PREVIEW_SIDE, type RunResult } from './protocol.js';

/** What happened to one picked file. */
export interface DemoEvent {
  id: number;
  name: string;
  outcome: 'done' | 'cancelled' | 'skipped' | 'failed';
  message: string;
  problem?: string;
}

export interface DemoResult {
  name: string;
  width: number;
  height: number;
  plan: Plan['kind'];
  backend: string;
  /** Milliseconds, measured in the worker for this run alone. */
  decodeMs: number;
  inferenceMs: number;
  renderMs: number;
  classesPresent: number[];
  tensors: number;
}

/** What the page exposes for its tests and for the curious (window.dropclassDemo). */
export interface DemoState {
  crossOriginIsolated: boolean;
  backend?: BackendInfo;
  /** Tensors alive when the model was ready (its weights). */
  modelTensors?: number;
  progress: { file: string; loaded: number; total: number }[];
  events: DemoEvent[];
  result?: DemoResult;
  error?: string;
  errorKind?: string;
  /** Times the page restarted its worker (a backend failure, or a cancelled run that did not stop). */
  restarts: number;
  /** How long a cancelled run may take to stop before the page restarts the worker; 15 s. */
  cancelTimeoutMs: number;
}

declare global {
  interface Window {
    dropclassDemo: DemoState;
  }
}


const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const progressBar = $<HTMLProgressElement>('progress');
const notice = $('notice');
const errorBox = $('error');
const results = $('results');
const largeSelect = $<HTMLSelectElement>('large');
const demo: DemoState = (window.dropclassDemo = { crossOriginIsolated: self.crossOriginIsolated, progress: [], events: [], restarts: 0, cancelTimeoutMs: 15_000 });
const state = (s: 'loading' | 'ready' | 'running' | 'done' | 'error') => (document.body.dataset.state = s);
const positive = (key: string) => {
  const value = params.get(key);
  if (value === null) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`?${key}=${value} in the address is not a positive whole number: remove it or give one (e.g. ?${key}=${key === 'threads' ? 4 : 512})`);
  return n;
};

interface Pick {
  file: Blob;
  name: string;
}
let worker: Worker;
let ready = false;
let fatal = false;
let metadata: ExportMetadata | undefined;
let running: (Pick & { id: number; replacedBy?: string }) | undefined;
let queued: Pick | undefined;
let nextId = 1;
let watchdog: ReturnType<typeof setTimeout> | undefined;
let initRequest: InitRequest;
let sampleLoaded = false;
/** The result on the page: its run and file name (for saving its mask). */
let shown: { id: number; name: string } | undefined;

/** A pixel count as people read it: "1.0 MP", or "40000 pixels" below 0.1 MP. */
const pixelCount = (n: number) => (n >= 100_000 ? `${(n / 1e6).toFixed(1)} MP` : `${n} pixels`);

function record(event: DemoEvent): void {
  demo.events.push(event);
}

function say(text: string): void {
  notice.textContent = text;
  notice.hidden = !text;
}

function showError(title: string, message: string, kind?: string): void {
  errorBox.replaceChildren();
  const heading = document.createElement('strong');
  heading.textContent = title;
  const body = document.createElement('p');
  body.textContent = message;
  errorBox.append(heading, body);
  errorBox.hidden = false;
  demo.error = message;
  demo.errorKind = kind;
  // The previous result is not this file's: take it off the page.
  clearResults();
  state('error');
}

function clearResults(): void {
  for (const id of ['image', 'mask', 'overlay']) {
    const canvas = $<HTMLCanvasElement>(id);
    canvas.width = 0;
    canvas.height = 0;
  }
  $('legend').replaceChildren();
  $('timing').textContent = '';
  $('shown').textContent = '';
  shown = undefined;
  results.hidden = true;
  delete results.dataset.stale;
  demo.result = undefined;
}

function draw(id: string, bitmap: ImageBitmap): void {
  const canvas = $<HTMLCanvasElement>(id);
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  // Handed over, not copied: the canvas shows the worker's bitmap as it is.
  canvas.getContext('bitmaprenderer')!.transferFromImageBitmap(bitmap);
}

function planText(r: RunResult): string {
  const { plan } = r;
  const limit = `over the ${pixelCount(positive('limit') ?? SINGLE_PASS_LIMIT)} single-pass limit`;
  switch (plan.kind) {
    case 'whole':
      return plan.inputWidth === r.width && plan.inputHeight === r.height ? 'one pass' : `one pass, padded to ${plan.inputWidth}×${plan.inputHeight}`;
    case 'downscale':
      return `${limit}: downscaled to ${plan.scaledWidth}×${plan.scaledHeight} for the model, its class map resized back to ${r.width}×${r.height} (nearest)`;
    default:
      return `${limit}: ${plan.tiles.length} windows of ${plan.window}×${plan.window} at full size (each pixel from a window where it is at least ${plan.margin} pixels from an inner edge)`;
  }
}

function showResult(r: RunResult): void {
  const meta = metadata!;
  errorBox.hidden = true;
  demo.error = undefined;
  const preview = { width: r.mask.width, height: r.mask.height };
  draw('image', r.image);
  draw('mask', r.mask);
  draw('overlay', r.overlay);
  const total = r.width * r.height;
  $('legend').replaceChildren(
    ...meta.classNames.map((name, c) => {
      const item = document.createElement('li');
      item.className = r.counts[c] > 0 ? 'present' : 'absent';
      item.title = `${r.counts[c]} pixels`;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = `rgb(${meta.palette[c].join(',')})`;
      const share = formatShare(r.counts[c], total);
      item.append(swatch, share ? `${name} ${share}` : name);
      return item;
    }),
  );
  const backend = demo.backend!;
  const compiled =
    r.newInputSizes.length > 0 && (backend.name === 'webgl' || backend.name === 'webgpu')
      ? ` (its first run at ${r.newInputSizes.join(', ')}: compiling the kernels for that size is included)`
      : '';
  $('timing').textContent =
    `inference ${r.inferenceMs.toFixed(0)} ms on ${backend.label}${compiled}; decoding ${r.decodeMs.toFixed(0)} ms, ` +
    `mask and overlay ${r.renderMs.toFixed(0)} ms (this image's run alone, in the worker)`;
  const previewed = preview.width !== r.width ? `; shown at ${preview.width}×${preview.height} (the views' size limit, ${PREVIEW_SIDE} pixels)` : '';
  $('shown').textContent = `${r.name}: ${r.width}×${r.height} ${r.format}${r.note ? ` (${r.note})` : ''}, ${planText(r)}${previewed}`;
  $('save').textContent = `Save the mask (PNG, ${r.width}×${r.height})`;
  shown = { id: r.id, name: r.name };
  $<HTMLButtonElement>('save').disabled = false;
  results.hidden = false;
  delete results.dataset.stale;
  demo.result = {
    name: r.name,
    width: r.width,
    height: r.height,
    plan: r.plan.kind,
    backend: backend.name,
    decodeMs: r.decodeMs,
    inferenceMs: r.inferenceMs,
    renderMs: r.renderMs,
    classesPresent: r.counts.flatMap((n, c) => (n > 0 ? [c] : [])),
    tensors: r.tensors,
  };
  status.textContent = `${r.name} segmented: pick or drop another image`;
  state('done');
}

function startRun(pick: Pick): void {
  const id = nextId++;
  running = { ...pick, id };
  errorBox.hidden = true;
  $<HTMLButtonElement>('save').disabled = true;
  if (!results.hidden) {
    results.dataset.stale = 'true';
    $('shown').textContent = `previous image, shown until ${pick.name} is done: ${$('shown').textContent}`;
  }
  status.textContent = `${pick.name}: starting`;
  state('running');
  const large = largeSelect.value as LargeImageMode;
  worker.postMessage({ type: 'run', id, file: pick.file, name: pick.name, large, limit: positive('limit'), window: positive('window') });
}

/** The run ended (any way): start what waits, if anything. */
function finishRun(): void {
  running = undefined;
  clearTimeout(watchdog);
  watchdog = undefined;
  if (queued && ready) {
    const next = queued;
    queued = undefined;
    startRun(next);
  }
}

function pick(file: Blob, name: string): void {
  if (fatal) {
    showError(`Cannot segment ${name}`, `the model is not loaded (${demo.error ?? 'see above'}); fix that and reload the page`);
    return;
  }
  if (running || !ready) {
    if (queued) {
      record({ id: 0, name: queued.name, outcome: 'skipped', message: `${queued.name} skipped: ${name} was picked before it started` });
    }
    const replaced = queued?.name;
    queued = { file, name };
    if (running) {
      const first = !running.replacedBy;
      running.replacedBy = name;
      if (first) {
        worker.postMessage({ type: 'cancel', id: running.id });
        const stuck = running;
        watchdog = setTimeout(() => restart(`${stuck.name} did not stop within ${demo.cancelTimeoutMs / 1000} s of being cancelled`, 'cancelled'), demo.cancelTimeoutMs);
      }
      say(
        `Cancelling ${running.name}: ${name} was picked while it ran; ${name} runs as soon as it stops` +
          `${replaced ? ` (${replaced}, picked in between, is skipped)` : ''}.`,
      );
    } else {
      say(`${name} runs once the model is ready${replaced ? ` (instead of ${replaced})` : ''}.`);
    }
    return;
  }
  say('');
  startRun({ file, name });
}

function restart(reason: string, outcome: 'cancelled' | 'failed'): void {
  worker.terminate();
  ready = false;
  demo.restarts++;
  if (running) {
    const message = `${reason}; the page restarted its worker (the model is reloaded), so the next image runs as before`;
    record({ id: running.id, name: running.name, outcome, message });
    if (outcome === 'failed') showError(`Could not segment ${running.name}`, message, 'backend');
    else say(`${running.name} cancelled: ${message}.`);
  }
  running = undefined;
  clearTimeout(watchdog);
  watchdog = undefined;
  startWorker();
}

function onMessage(message: FromWorker): void {
  switch (message.type) {
    case 'stage':
      if (!ready) status.textContent = `${message.text}…`;
      break;
    case 'progress': {
      demo.progress.push({ file: message.file, loaded: message.loaded, total: message.total });
      progressBar.hidden = false;
      progressBar.max = message.total || 1;
      progressBar.value = message.loaded;
      const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
      status.textContent = `loading the model: ${message.file} ${kib(message.loaded)}${message.total ? ` of ${kib(message.total)}` : ''}`;
      break;
    }
    case 'ready': {
      ready = true;
      metadata = message.metadata;
      demo.backend = message.backend;
      demo.modelTensors = message.tensors;
      progressBar.hidden = true;
      const passed = message.backend.tried.filter((t) => t.outcome !== 'used');
      $('backend').textContent =
        `Backend: ${message.backend.label}.` + (passed.length ? ` Passed over: ${passed.map((t) => `${t.name} (${t.detail})`).join('; ')}.` : '');
      status.textContent = `model loaded (${metadata.classNames.length} classes) on ${message.backend.label}: pick or drop an image`;
      if (!running) state(errorBox.hidden ? 'ready' : 'error');
      if (queued) finishRun();
      else if (!sampleLoaded) {
        sampleLoaded = true;
        void loadSample();
      }
      break;
    }
    case 'init-failed':
      fatal = true;
      progressBar.hidden = true;
      status.textContent = 'the page cannot segment images';
      showError('The model did not load', message.message, 'model');
      break;
    case 'running':
      if (running?.id === message.id && !running.replacedBy) status.textContent = `${running.name}: ${message.text}`;
      break;
    case 'result':
      if (running?.id !== message.result.id) break;
      if (running.replacedBy) {
        record({ id: running.id, name: running.name, outcome: 'cancelled', message: `${running.name} finished before it could stop; its result is dropped for ${running.replacedBy}` });
        say(`${running.name} cancelled (it finished first; its result is not shown): ${running.replacedBy} was picked while it ran.`);
      } else {
        showResult(message.result);
        record({ id: running.id, name: running.name, outcome: 'done', message: $('timing').textContent ?? '' });
      }
      finishRun();
      break;
    case 'mask-png': {
      if (!message.png) {
        say(`The mask was not saved: ${message.message}.`);
        break;
      }
      const link = document.createElement('a');
      link.href = URL.createObjectURL(message.png);
      link.download = `${(shown?.name ?? 'image').replace(/\.[^.]*$/, '')}_mask.png`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      break;
    }
    case 'cancelled':
      if (running?.id !== message.id) break;
      record({ id: running.id, name: running.name, outcome: 'cancelled', message: `${running.name} cancelled ${message.at}: ${running.replacedBy} was picked while it ran` });
      say(`${running.name} cancelled ${message.at}: ${running.replacedBy} was picked while it ran.`);
      finishRun();
      break;
    case 'failed': {
      if (running?.id !== message.id) break;
      const name = running.name;
      if (message.kind === 'backend') {
        restart(message.message, 'failed');
        break;
      }
      record({ id: running.id, name, outcome: 'failed', message: message.message, problem: message.problem });
      showError(`Could not segment ${name}`, message.message, message.problem);
      status.textContent = `${name} was not segmented: pick or drop another image`;
      finishRun();
      break;
    }
  }
}

function startWorker(): void {
  worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (event: MessageEvent<FromWorker>) => onMessage(event.data);
  worker.onerror = (event) => {
    event.preventDefault();
    if (!ready) {
      fatal = true;
      showError('The page\'s worker did not start', `${event.message || 'worker.js failed to load'}: check that worker.js is served beside index.html`, 'model');
      return;
    }
    restart(`the worker stopped (${event.message})`, 'failed');
  };
  worker.postMessage(initRequest);
}

async function loadSample(): Promise<void> {
  const sample = params.get('sample') ?? 'sample.png';
  if (sample === 'none') return;
  const response = await fetch(sample);
  if (response.ok) pick(await response.blob(), `sample image ${sample}`);
}

function main(): void {
  const backend = params.get('backend') as BackendName | null;
  if (backend && !['webgpu', 'webgl', 'wasm', 'cpu'].includes(backend)) {
    throw new Error(`?backend=${backend} in the address is not a backend: give webgpu, webgl, wasm or cpu, or leave it out for the automatic choice`);
  }
  initRequest = {
    type: 'init',
    modelUrl: new URL(params.get('model') ?? 'model/model.json', location.href).href,
    wasmUrl: new URL('wasm/', location.href).href,
    backend: backend ?? undefined,
    threads: positive('threads'),
  };
  const large = params.get('large');
  if (large === 'window' || large === 'downscale') largeSelect.value = large;
  $('large-limit').textContent = pixelCount(positive('limit') ?? SINGLE_PASS_LIMIT);
  $('window-size').textContent = `${positive('window') ?? WINDOW}×${positive('window') ?? WINDOW}`;
  if (!self.crossOriginIsolated) {
    $('isolation').textContent =
      'This page is not cross-origin isolated (its server sends no Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp headers): wasm runs on one thread.';
  }
  $('save').addEventListener('click', () => {
    if (shown && ready) worker.postMessage({ type: 'mask-png', id: shown.id });
  });
  const input = $<HTMLInputElement>('file');
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) pick(file, file.name);
    input.value = '';
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) pick(file, file.name);
  });
  startWorker();
}

try {
  main();
} catch (error) {
  fatal = true;
  showError('The page did not start', error instanceof Error ? error.message : String(error));
}
