// Drives the demo page in headless Chromium (Debian's `chromium`, through playwright-core, which
// downloads no browser): the mask it renders against the Node prediction on every backend, the
// backend order with the GPU forced to software, cross-origin isolation and wasm threads, a
// 4000x3000 image, windows against one pass, picks during a run, a run that does not stop, and
// files that are not images.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createDeepLabV3 } from '@dropclass/backbone-deeplab';
import { exportLogits, loadExport, predictFiles } from '@dropclass/train';
import { DropClassModel } from '@dropclass/core';
import { exportStockModel } from '@dropclass/core/node';
import { generateSynthetic } from '@dropclass/datasets';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import * as tf from '@tensorflow/tfjs-core';
import { type Browser, type Page, chromium } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoEvent } from './main.js';
import { formatShare, planInference, resizeNearest } from './plan.js';
// @ts-expect-error: a plain ES module without types
import { serve } from '../scripts/serve.mjs';

const here = resolve(import.meta.dirname, '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser) {
  console.warn(`skipping the browser test of examples/web: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it`);
}
const run = promisify(execFile);

/** WebGL (ANGLE) and WebGPU forced onto SwiftShader, Chromium's software rasteriser, whatever GPU the machine has. */
const SOFTWARE_GPU = ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

const PALETTE: [number, number, number][] = [
  [128, 64, 128],
  [107, 142, 35],
  [70, 130, 180],
  [230, 210, 140],
];

/** RGB bytes of the mask canvas, as the page shows it (copied onto a 2D canvas to read them). */
async function renderedMask(page: Page): Promise<{ width: number; height: number; rgb: number[] }> {
  return page.evaluate(() => {
    const canvas = document.getElementById('mask') as HTMLCanvasElement;
    const copy = new OffscreenCanvas(canvas.width, canvas.height).getContext('2d')!;
    copy.drawImage(canvas, 0, 0);
    const data = copy.getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, rgb: Array.from(data).filter((_, i) => i % 4 !== 3) };
  });
}

/** The full-size mask the page saves (its "Save the mask" button), as RGB bytes. */
async function savedMask(page: Page): Promise<{ name: string; width: number; height: number; rgb: Buffer }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
  const { data, info } = await sharp(await download.path()).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { name: download.suggestedFilename(), width: info.width, height: info.height, rgb: data };
}

const eventCount = (page: Page) => page.evaluate(() => window.dropclassDemo.events.length);

/** The page's events from `from` on, once one for `last` (other than skipped) is among them. */
async function eventsUntil(page: Page, from: number, last: string): Promise<DemoEvent[]> {
  await page.waitForFunction(
    ([from, last]) => window.dropclassDemo.events.slice(from as number).some((e) => e.name === last && e.outcome !== 'skipped'),
    [from, last] as const,
    { timeout: 240_000 },
  );
  return page.evaluate((from) => window.dropclassDemo.events.slice(from), from);
}

/** Picks a file and returns what became of it. */
async function pick(page: Page, file: string): Promise<DemoEvent> {
  const from = await eventCount(page);
  await page.setInputFiles('#file', file);
  const events = await eventsUntil(page, from, basename(file));
  return events[events.length - 1];
}

/** Picks a file that must be segmented; returns the page's result. */
async function segmented(page: Page, file: string) {
  const event = await pick(page, file);
  expect(event.outcome, `${basename(file)}: ${event.message}`).toBe('done');
  return page.evaluate(() => window.dropclassDemo.result!);
}

describe.skipIf(!hasBrowser)('the web demo in headless Chromium', () => {
  let work: string;
  let site: string;
  let server: Server;
  let url: string;
  let browser: Browser;
  let model: DropClassModel;
  /** A 56x40 crop of a synthetic image (the model cannot take that size: the page pads and crops) and its Node mask. */
  let crop: string;
  let nodeMask: Buffer;
  /** A synthetic 64x64 image, the same upscaled to 4000x3000 and to 2000x2000, and to 400x300. */
  let small: string;
  let huge: string;
  let large: string;
  let medium: string;

  async function open(query: string, base = url): Promise<Page> {
    const page = await browser.newPage();
    page.on('console', (m) => m.type() === 'error' && console.error(`page: ${m.text()}`));
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${base}${query}`);
    await page.waitForFunction(() => window.dropclassDemo?.backend || document.body.dataset.state === 'error', null, { timeout: 120_000 });
    const error = await page.evaluate(() => window.dropclassDemo.error);
    if (error) throw new Error(`the page did not start: ${error}`);
    return page;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dropclass-web-test-'));
    site = join(work, 'site');
    await run(process.execPath, [join(here, 'scripts/build.mjs'), site]);
    await initBackend({ backend: 'wasm' });
    // A DeepLabV3 (stride 16: the page pads, upsamples and crops) a few steps into training.
    model = DropClassModel.create(createDeepLabV3({ width: 0.125, outputStride: 16, seed: 1 }), {
      numClasses: 4,
      seed: 3,
      metadata: { classNames: ['road', 'grass', 'water', 'sand'], palette: PALETTE, mean: [124, 116, 104], std: [58, 57, 57] },
    });
    for (let step = 0; step < 3; step++) {
      const images = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 10 + step) as tf.Tensor4D;
      const labels = tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([2, 64, 64], 0, 4, 'float32', 20 + step)), 'int32')) as tf.Tensor3D;
      model.trainStep(images, labels, { progress: 0.5, learningRate: 0.002 });
      tf.dispose([images, labels]);
    }
    await exportStockModel(model, join(site, 'test-model'));

    await generateSynthetic({ root: join(work, 'data'), seed: 5, size: 64, counts: { train: 1, val: 1, 'val-shifted': 1 } });
    small = join(work, 'data/val/images/val-00000.png');
    crop = join(work, 'synthetic.png');
    await sharp(small).extract({ left: 3, top: 5, width: 56, height: 40 }).png().toFile(crop);
    const [maskFile] = await predictFiles(model, crop, join(work, 'node'), { palette: PALETTE, mean: [124, 116, 104], std: [58, 57, 57] });
    nodeMask = (await sharp(maskFile).removeAlpha().raw().toBuffer({ resolveWithObject: true })).data;
    huge = join(work, 'huge.png');
    await sharp(small).resize(4000, 3000).png({ compressionLevel: 1 }).toFile(huge);
    large = join(work, 'large.png');
    await sharp(small).resize(2000, 2000).png({ compressionLevel: 1 }).toFile(large);
    medium = join(work, 'medium.png');
    await sharp(join(here, 'src/sample.png')).resize(400, 300).png().toFile(medium);

    ({ server, url } = await serve(site));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...SOFTWARE_GPU],
    });
  });

  afterAll(async () => {
    await browser?.close();
    server?.close();
    model?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('passes over WebGPU and WebGL when they are software (forced to SwiftShader) and runs threaded wasm', async () => {
    const page = await open('?model=test-model/model.json&sample=none');
    const backend = (await page.evaluate(() => window.dropclassDemo.backend))!;
    console.log(`browser test: backends tried: ${backend.tried.map((t) => `${t.name} ${t.outcome} (${t.detail})`).join('; ')}`);
    expect(backend.tried.map((t) => [t.name, t.outcome])).toEqual([
      ['webgpu', 'skipped'],
      ['webgl', 'skipped'],
      ['wasm', 'used'],
    ]);
    expect(backend.tried[0].detail).toMatch(/^the adapter is a software fallback \(.*swiftshader.*\), slower than wasm$/i);
    expect(backend.tried[1].detail).toMatch(/^the renderer is a software one \(.*SwiftShader.*\), slower than wasm$/);
    expect(await page.locator('#backend').textContent()).toMatch(/^Backend: wasm \(\d+ threads?, SIMD\)\. Passed over: webgpu \(.*\); webgl \(.*SwiftShader.*\)\.$/);
    await page.close();
  });

  it('renders the mask that the Node prediction of the training model gives, on wasm, WebGL and WebGPU', async () => {
    expect([...new Set(Array.from({ length: 56 * 40 }, (_, i) => nodeMask.subarray(3 * i, 3 * i + 3).join(',')))].length).toBeGreaterThan(1);
    // The page's own choice (wasm here), then each backend forced: on SwiftShader, WebGL and WebGPU still compute exactly.
    for (const backend of ['', 'webgl', 'webgpu']) {
      const page = await open(`?model=test-model/model.json&sample=none${backend ? `&backend=${backend}` : ''}`);
      const result = await segmented(page, crop);
      const label = (await page.evaluate(() => window.dropclassDemo.backend!.label));
      console.log(`browser test: ${label}, ${result.width}x${result.height}, ${result.inferenceMs.toFixed(0)} ms`);
      expect(result.backend).toBe(backend || 'wasm');
      expect(await page.locator('#timing').textContent()).toContain(`on ${label}`);
      const mask = await renderedMask(page);
      expect([mask.width, mask.height]).toEqual([56, 40]);
      const differing = mask.rgb.filter((v, i) => v !== nodeMask[i]).length;
      expect(differing, `mask bytes that differ from the Node prediction on ${result.backend}`).toBe(0);
      await page.close();
    }
  });

  it('runs the bundled model on the bundled sample as plain tfjs does in Node, with load progress and the legend of the mask', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    const [event] = await eventsUntil(page, 0, 'sample image sample.png');
    expect(event.outcome, event.message).toBe('done');
    const mask = await renderedMask(page);

    const loaded = await loadExport(join(here, 'model'));
    const { data, info } = await sharp(join(here, 'src/sample.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const { mean, std } = loaded.metadata.input;
    const classes = tf.tidy(() => {
      const pixels = tf.div(tf.sub(tf.tensor3d(new Float32Array(data), [info.height, info.width, 3]), mean), std);
      return tf.argMax(exportLogits(loaded, tf.expandDims(pixels, 0) as tf.Tensor4D), -1).dataSync() as Int32Array;
    });
    loaded.model.dispose();
    const expected = Array.from(classes).flatMap((c) => loaded.metadata.palette[c]);
    expect([mask.width, mask.height]).toEqual([info.width, info.height]);
    expect(mask.rgb.filter((v, i) => v !== expected[i]).length).toBe(0);

    // The legend: every class, each present one with its share of the mask.
    const counts = loaded.metadata.classNames.map((_, c) => classes.filter((k) => k === c).length);
    const legend = await page.locator('#legend li').allTextContents();
    expect(legend).toEqual(loaded.metadata.classNames.map((name, c) => (counts[c] ? `${name} ${formatShare(counts[c], classes.length)}` : name)));

    // Load progress: the weight file's bytes as they arrived, ending at its size.
    const progress = await page.evaluate(() => window.dropclassDemo.progress);
    const shard = progress.filter((p) => p.file === 'group1-shard1of1.bin');
    const size = (await stat(join(here, 'model/group1-shard1of1.bin'))).size;
    expect(shard.length).toBeGreaterThan(0);
    expect(shard[shard.length - 1]).toEqual({ file: 'group1-shard1of1.bin', loaded: size, total: size });
    await page.close();
  });

  it('is cross-origin isolated and runs wasm on more than one thread; served without the headers, on one thread, and says why', async () => {
    const requested: string[] = [];
    const page = await browser.newPage();
    page.on('request', (r) => requested.push(new URL(r.url()).pathname));
    await page.goto(`${url}?model=test-model/model.json&sample=none&backend=wasm&threads=2`);
    await page.waitForFunction(() => window.dropclassDemo.backend, null, { timeout: 120_000 });
    const isolated = await page.evaluate(() => ({ page: window.dropclassDemo.crossOriginIsolated, backend: window.dropclassDemo.backend! }));
    expect(isolated.page).toBe(true);
    expect(isolated.backend.crossOriginIsolated).toBe(true);
    expect(isolated.backend.threads).toBe(2);
    expect(isolated.backend.label).toBe('wasm (2 threads, SIMD)');
    expect(requested).toContain('/wasm/tfjs-backend-wasm-threaded-simd.wasm');
    expect((await renderedMaskAfter(page, crop)).differing).toBe(0);
    // By default, every logical core (at most 8).
    await page.goto(`${url}?model=test-model/model.json&sample=none&backend=wasm`);
    await page.waitForFunction(() => window.dropclassDemo.backend, null, { timeout: 120_000 });
    expect(await page.evaluate(() => window.dropclassDemo.backend!.threads)).toBe(await page.evaluate(() => Math.min(8, navigator.hardwareConcurrency)));
    await page.close();

    const plain = await serve(site, 0, { isolate: false });
    try {
      const unisolated = await open('?model=test-model/model.json&sample=none&backend=wasm&threads=2', plain.url);
      const state = await unisolated.evaluate(() => ({ page: window.dropclassDemo.crossOriginIsolated, backend: window.dropclassDemo.backend! }));
      expect(state.page).toBe(false);
      expect(state.backend.threads).toBe(1);
      expect(state.backend.tried.at(-1)!.detail).toMatch(/^1 thread: the page is not cross-origin isolated/);
      expect(await unisolated.locator('#isolation').textContent()).toMatch(/not cross-origin isolated .*Cross-Origin-Opener-Policy: same-origin .*Cross-Origin-Embedder-Policy: require-corp.*wasm runs on one thread/);
      expect((await renderedMaskAfter(unisolated, crop)).differing).toBe(0);
      await unisolated.close();
    } finally {
      plain.server.close();
    }
  });

  /** Picks the 56x40 crop and counts the mask bytes that differ from the Node prediction. */
  async function renderedMaskAfter(page: Page, file: string) {
    await segmented(page, file);
    const mask = await renderedMask(page);
    return { differing: mask.rgb.filter((v, i) => v !== nodeMask[i]).length };
  }

  it('segments a 4000x3000 PNG on wasm (downscaled, as it says), then the next image; the tensors alive do not grow', async () => {
    const page = await open('?sample=none&backend=wasm');
    const modelTensors = await page.evaluate(() => window.dropclassDemo.modelTensors!);
    const result = await segmented(page, huge);
    console.log(`browser test: 4000x3000 on wasm: decoding ${result.decodeMs.toFixed(0)} ms, inference ${result.inferenceMs.toFixed(0)} ms, mask and overlay ${result.renderMs.toFixed(0)} ms`);
    expect(result).toMatchObject({ width: 4000, height: 3000, plan: 'downscale', tensors: modelTensors });
    const plan = planInference(4000, 3000, { sizeMultiple: 8, minSize: 8 }, { mode: 'downscale' });
    if (plan.kind !== 'downscale') throw new Error('expected a downscale plan');
    expect(await page.locator('#shown').textContent()).toBe(
      `huge.png: 4000×3000 PNG, over the 1.0 MP single-pass limit: downscaled to ${plan.scaledWidth}×${plan.scaledHeight} for the model, ` +
        "its class map resized back to 4000×3000 (nearest); shown at 1024×768 (the views' size limit, 1024 pixels)",
    );
    expect(await page.evaluate(() => [(document.getElementById('mask') as HTMLCanvasElement).width, (document.getElementById('mask') as HTMLCanvasElement).height])).toEqual([1024, 768]);
    // The mask at full size, saved; against Node: the bundled model on the same image downscaled by sharp (another resampler), its classes resized back.
    const saved = await savedMask(page);
    expect([saved.name, saved.width, saved.height]).toEqual(['huge_mask.png', 4000, 3000]);
    const loaded = await loadExport(join(here, 'model'));
    const scaled = await sharp(huge).resize(plan.scaledWidth, plan.scaledHeight, { kernel: 'lanczos3' }).removeAlpha().raw().toBuffer();
    const nodeClasses = tf.tidy(() => {
      const pixels = tf.div(tf.sub(tf.tensor3d(new Float32Array(scaled), [plan.scaledHeight, plan.scaledWidth, 3]), loaded.metadata.input.mean), loaded.metadata.input.std);
      const padded = tf.pad(pixels, [[0, plan.inputHeight - plan.scaledHeight], [0, plan.inputWidth - plan.scaledWidth], [0, 0]]);
      const argmax = tf.argMax(exportLogits(loaded, tf.expandDims(padded, 0) as tf.Tensor4D), -1);
      return tf.slice(argmax, [0, 0, 0], [1, plan.scaledHeight, plan.scaledWidth]).dataSync() as Int32Array;
    });
    const full = resizeNearest(Uint16Array.from(nodeClasses), plan.scaledWidth, plan.scaledHeight, 4000, 3000);
    let same = 0;
    for (let p = 0; p < full.length; p++) {
      const colour = loaded.metadata.palette[full[p]];
      if (colour[0] === saved.rgb[3 * p] && colour[1] === saved.rgb[3 * p + 1] && colour[2] === saved.rgb[3 * p + 2]) same++;
    }
    loaded.model.dispose();
    console.log(`browser test: 4000x3000 mask agrees with Node's on ${((100 * same) / full.length).toFixed(2)}% of its pixels`);
    expect(same / full.length).toBeGreaterThan(0.97);

    for (const file of [small, crop, small]) expect((await segmented(page, file)).tensors).toBe(modelTensors);
    await page.close();
  });

  it('predicts in windows at full size the classes one pass predicts (bundled U-Net)', async () => {
    const whole = await open('?sample=none&backend=wasm');
    expect((await segmented(whole, medium)).plan).toBe('whole');
    const onePass = await renderedMask(whole);
    await whole.close();
    const windowed = await open('?sample=none&backend=wasm&large=window&limit=40000&window=192');
    const result = await segmented(windowed, medium);
    expect(result.plan).toBe('window');
    expect(await windowed.locator('#shown').textContent()).toMatch(/^medium\.png: 400×300 PNG, over the 40000 pixels single-pass limit: 15 windows of 192×192 at full size/);
    const windows = await renderedMask(windowed);
    expect([windows.width, windows.height]).toEqual([400, 300]);
    expect(windows.rgb.filter((v, i) => v !== onePass.rgb[i]).length, 'mask bytes that differ between windows and one pass').toBe(0);
    await windowed.close();
  });

  it('cancels the running image when another is picked in quick succession, and says so', async () => {
    const page = await open('?sample=none&backend=wasm');
    const from = await eventCount(page);
    await page.setInputFiles('#file', huge);
    await page.setInputFiles('#file', small);
    const events = await eventsUntil(page, from, basename(small));
    expect(events.map((e) => [e.name, e.outcome])).toEqual([
      ['huge.png', 'cancelled'],
      ['val-00000.png', 'done'],
    ]);
    expect(events[0].message).toMatch(/^huge\.png (cancelled .*: val-00000\.png was picked while it ran|finished before it could stop; its result is dropped for val-00000\.png)$/);
    expect(await page.locator('#notice').textContent()).toMatch(/^huge\.png cancelled .*val-00000\.png was picked while it ran\.$/);
    const result = await page.evaluate(() => window.dropclassDemo.result!);
    expect([result.name, result.width, result.height]).toEqual(['val-00000.png', 64, 64]);
    expect((await renderedMask(page)).width).toBe(64);

    // Three picks at once (in one task of the page): the first runs and is cancelled, the second is skipped, the last runs.
    const next = await eventCount(page);
    for (const file of [huge, crop, small]) await writeFile(join(site, basename(file)), await readFile(file));
    await page.evaluate(async (names) => {
      const files = await Promise.all(names.map(async (name) => new File([await (await fetch(name)).blob()], name, { type: 'image/png' })));
      const input = document.getElementById('file') as HTMLInputElement;
      for (const file of files) {
        const transfer = new DataTransfer();
        transfer.items.add(file);
        input.files = transfer.files;
        input.dispatchEvent(new Event('change'));
      }
    }, [huge, crop, small].map((f) => basename(f)));
    const burst = await eventsUntil(page, next, basename(small));
    expect(burst.map((e) => [e.name, e.outcome])).toEqual([
      ['synthetic.png', 'skipped'],
      ['huge.png', 'cancelled'],
      ['val-00000.png', 'done'],
    ]);
    expect(burst[0].message).toBe('synthetic.png skipped: val-00000.png was picked before it started');
    await page.close();
  });

  it('restarts its worker when a cancelled run does not stop in time, and the next image runs', async () => {
    // 2000x2000 in one pass (limit raised to 4 MP): wasm computes it without a break, so the cancel waits.
    const page = await open('?sample=none&backend=wasm&limit=4000000');
    const modelTensors = await page.evaluate(() => window.dropclassDemo.modelTensors!);
    await page.evaluate(() => (window.dropclassDemo.cancelTimeoutMs = 200));
    const from = await eventCount(page);
    await page.setInputFiles('#file', large);
    await page.waitForFunction(() => /segmenting on wasm: one pass/.test(document.getElementById('status')!.textContent ?? ''), null, { timeout: 60_000 });
    await page.setInputFiles('#file', small);
    const events = await eventsUntil(page, from, basename(small));
    expect(events.map((e) => [e.name, e.outcome])).toEqual([
      ['large.png', 'cancelled'],
      ['val-00000.png', 'done'],
    ]);
    expect(events[0].message).toBe('large.png did not stop within 0.2 s of being cancelled; the page restarted its worker (the model is reloaded), so the next image runs as before');
    expect(await page.evaluate(() => [window.dropclassDemo.restarts, window.dropclassDemo.result!.tensors])).toEqual([1, modelTensors]);
    await page.close();
  });

  it('says what is wrong with a text file, a renamed file and a truncated PNG, and takes the previous result off the page', async () => {
    const notes = join(work, 'notes.txt');
    await writeFile(notes, 'class,share\nroad,0.4\n');
    const fake = join(work, 'fake.png');
    await writeFile(fake, 'class,share\nroad,0.4\n');
    const truncated = join(work, 'truncated.png');
    const png = await readFile(small);
    await writeFile(truncated, png.subarray(0, Math.floor(png.length / 2)));

    const page = await open('?sample=none&backend=wasm');
    const modelTensors = await page.evaluate(() => window.dropclassDemo.modelTensors!);
    const messages: string[] = [];
    for (const [file, problem, message] of [
      [notes, 'text', /^notes\.txt is a text file, not an image: it begins "class,share"; pick a PNG, JPEG, WebP, GIF, BMP or AVIF image$/],
      [fake, 'renamed', /^fake\.png is named like a PNG image but holds text \(it begins "class,share"\), not PNG data .* pick the original image instead/],
      [truncated, 'truncated', /^truncated\.png is a 64x64 PNG that is cut short: its data stops after .*, inside its IDAT chunk .*download or export it again$/],
    ] as const) {
      expect((await segmented(page, small)).tensors).toBe(modelTensors);
      expect(await page.locator('#results').isVisible()).toBe(true);
      const event = await pick(page, file);
      expect([event.outcome, event.problem]).toEqual(['failed', problem]);
      expect(event.message).toMatch(message);
      messages.push(event.message);
      const shown = await page.evaluate(() => ({
        state: document.body.dataset.state,
        error: document.getElementById('error')!.textContent,
        role: document.getElementById('error')!.getAttribute('role'),
        result: window.dropclassDemo.result,
        mask: [(document.getElementById('mask') as HTMLCanvasElement).width, (document.getElementById('mask') as HTMLCanvasElement).height],
        legend: document.querySelectorAll('#legend li').length,
      }));
      expect(shown).toEqual({ state: 'error', error: `Could not segment ${basename(file)}${event.message}`, role: 'alert', result: undefined, mask: [0, 0], legend: 0 });
      expect(await page.locator('#error').isVisible()).toBe(true);
      expect(await page.locator('#results').isVisible()).toBe(false);
    }
    expect(new Set(messages).size).toBe(3);
    // And the next image still runs, the error gone.
    expect((await segmented(page, small)).tensors).toBe(modelTensors);
    expect(await page.locator('#error').isVisible()).toBe(false);
    await page.close();
  });
});
