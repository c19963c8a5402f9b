// The DropClass web demo: loads a `dropclass export` with @tensorflow/tfjs (WebGL, else wasm, else
// cpu), segments a picked or dropped image and shows the mask, an overlay and the class legend.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

type Rgb = [number, number, number];

/** What `dropclass export` writes into model.json (userDefinedMetadata.dropclass). */
interface ExportMetadata {
  format: string;
  numClasses: number;
  classNames: string[];
  palette: Rgb[];
  input: { channels: number; mean: Rgb; std: Rgb; sizeMultiple: number; minSize: number };
  output: { stride: number };
}

export interface DemoResult {
  width: number;
  height: number;
  /** Milliseconds from the pixels to the class map on the host (after a warm-up run). */
  ms: number;
  /** The first run at this size, which includes compiling kernels for it. */
  firstMs: number;
  backend: string;
  classesPresent: number[];
}

declare global {
  interface Window {
    dropclassDemo: { backend?: string; result?: DemoResult; error?: string };
  }
}

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const state = (s: 'loading' | 'ready' | 'running' | 'done' | 'error') => (document.body.dataset.state = s);
window.dropclassDemo = {};

async function pickBackend(): Promise<string> {
  setWasmPaths(new URL('wasm/', location.href).href);
  const wanted = params.get('backend');
  const order = wanted ? [wanted] : ['webgl', 'wasm', 'cpu'];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      // try the next one
    }
  }
  throw new Error(`none of the backends ${order.join(', ')} started in this browser`);
}

function checkMetadata(meta: ExportMetadata | undefined, url: string): ExportMetadata {
  if (!meta || meta.format !== 'dropclass-export/1') {
    throw new Error(`${url} has no dropclass-export/1 metadata: export the model with \`dropclass export\``);
  }
  return meta;
}

/** Class map of an image, following the export's rules: normalise, pad bottom-right, upsample, argmax, crop. */
async function segment(model: tf.LayersModel, meta: ExportMetadata, pixels: ImageData): Promise<{ classes: Int32Array; ms: number }> {
  const start = performance.now();
  const { width, height } = pixels;
  const size = (s: number) => Math.max(meta.input.minSize, Math.ceil(s / meta.input.sizeMultiple) * meta.input.sizeMultiple);
  const classMap = tf.tidy(() => {
    const rgb = tf.cast(tf.browser.fromPixels(pixels, 3), 'float32');
    const normalised = tf.div(tf.sub(rgb, meta.input.mean), meta.input.std);
    const [h, w] = [size(height), size(width)];
    const padded = tf.pad(normalised, [[0, h - height], [0, w - width], [0, 0]]);
    let logits = model.predict(tf.expandDims(padded, 0)) as tf.Tensor4D;
    if (meta.output.stride !== 1) logits = tf.image.resizeBilinear(logits, [h, w], false, true);
    return tf.slice(tf.argMax(logits, -1), [0, 0, 0], [1, height, width]);
  });
  const classes = (await classMap.data()) as Int32Array;
  classMap.dispose();
  return { classes, ms: performance.now() - start };
}

function draw(canvas: HTMLCanvasElement, data: ImageData): void {
  canvas.width = data.width;
  canvas.height = data.height;
  canvas.getContext('2d')!.putImageData(data, 0, 0);
}

function render(meta: ExportMetadata, pixels: ImageData, classes: Int32Array): number[] {
  const mask = new ImageData(pixels.width, pixels.height);
  const overlay = new ImageData(pixels.width, pixels.height);
  const counts = new Array<number>(meta.numClasses).fill(0);
  classes.forEach((c, i) => {
    counts[c]++;
    const colour = meta.palette[c];
    for (let k = 0; k < 3; k++) {
      mask.data[4 * i + k] = colour[k];
      overlay.data[4 * i + k] = Math.round(0.5 * pixels.data[4 * i + k] + 0.5 * colour[k]);
    }
    mask.data[4 * i + 3] = 255;
    overlay.data[4 * i + 3] = 255;
  });
  draw($('image'), pixels);
  draw($('mask'), mask);
  draw($('overlay'), overlay);
  const legend = $('legend');
  legend.replaceChildren(
    ...meta.classNames.map((name, c) => {
      const item = document.createElement('li');
      item.className = counts[c] > 0 ? 'present' : 'absent';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = `rgb(${meta.palette[c].join(',')})`;
      const share = counts[c] > 0 ? ` ${((100 * counts[c]) / classes.length).toFixed(1)}%` : '';
      item.append(swatch, `${name}${share}`);
      return item;
    }),
  );
  return counts.flatMap((n, c) => (n > 0 ? [c] : []));
}

async function pixelsOf(file: Blob): Promise<ImageData> {
  // No colour conversion: the model sees the file's own RGB values, as in Node.
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

async function start(): Promise<void> {
  const backend = await pickBackend();
  window.dropclassDemo.backend = backend;
  const modelUrl = new URL(params.get('model') ?? 'model/model.json', location.href).href;
  const model = await tf.loadLayersModel(modelUrl);
  const meta = checkMetadata((model.getUserDefinedMetadata() as { dropclass?: ExportMetadata } | undefined)?.dropclass, modelUrl);
  // A first run compiles the kernels, so the time shown is that of a prediction.
  const side = meta.input.minSize;
  await segment(model, meta, new ImageData(side, side));
  status.textContent = `model loaded (${meta.classNames.length} classes), backend ${backend}: pick or drop an image`;
  state('ready');

  const run = async (file: Blob, label: string) => {
    state('running');
    try {
      const pixels = await pixelsOf(file);
      const first = await segment(model, meta, pixels);
      const classesPresent = render(meta, pixels, first.classes);
      // A new image size compiles new kernels (WebGL shaders) in the first run: time a second one too.
      const { ms } = await segment(model, meta, pixels);
      window.dropclassDemo.result = { width: pixels.width, height: pixels.height, ms, firstMs: first.ms, backend, classesPresent };
      status.textContent = `${label}: ${pixels.width}×${pixels.height}`;
      $('timing').textContent =
        `inference ${ms.toFixed(1)} ms on the ${backend} backend (pixels to class map; ` +
        `the first run at this size took ${first.ms.toFixed(1)} ms, kernel set-up included)`;
      state('done');
    } catch (error) {
      fail(error);
    }
  };
  const input = $<HTMLInputElement>('file');
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) void run(file, file.name);
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
    if (file) void run(file, file.name);
  });
  const sample = params.get('sample') ?? 'sample.png';
  if (sample !== 'none') {
    const response = await fetch(sample);
    if (response.ok) await run(await response.blob(), `sample image ${sample}`);
  }
}

function fail(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  window.dropclassDemo.error = message;
  status.textContent = `error: ${message}`;
  state('error');
}

start().catch(fail);
