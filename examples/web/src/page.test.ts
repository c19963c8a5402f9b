// Drives the demo page in headless Chromium (Debian's `chromium`, through playwright-core, which
// downloads no browser) and checks that the mask it renders is the Node prediction.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createDeepLabV3 } from '@dropclass/backbone-deeplab';
import { exportLogits, loadExport, predictFiles } from '@dropclass/cli';
import { DropClassModel, exportStockModel } from '@dropclass/core';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { generateSynthetic } from '@dropclass/datasets';
import * as tf from '@tensorflow/tfjs-core';
import { type Browser, type Page, chromium } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types
import { serve } from '../scripts/serve.mjs';

const here = resolve(import.meta.dirname, '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser) {
  console.warn(`skipping the browser test of examples/web: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it`);
}
const run = promisify(execFile);

const PALETTE: [number, number, number][] = [
  [128, 64, 128],
  [107, 142, 35],
  [70, 130, 180],
  [230, 210, 140],
];

/** RGB bytes of the mask canvas, as the page rendered it. */
async function renderedMask(page: Page): Promise<{ width: number; height: number; rgb: number[] }> {
  return page.evaluate(() => {
    const canvas = document.getElementById('mask') as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, rgb: Array.from(data).filter((_, i) => i % 4 !== 3) };
  });
}

async function pick(page: Page, file: string) {
  await page.setInputFiles('#file', file);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]');
  const state = await page.evaluate(() => ({ result: window.dropclassDemo.result, error: window.dropclassDemo.error }));
  if (state.error) throw new Error(`the page failed: ${state.error}`);
  return state.result!;
}

describe.skipIf(!hasBrowser)('the web demo in headless Chromium', () => {
  let work: string;
  let server: Server;
  let url: string;
  let browser: Browser;
  let model: DropClassModel;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dropclass-web-test-'));
    const site = join(work, 'site');
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
    ({ server, url } = await serve(site));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    server?.close();
    model?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('renders the mask that the Node prediction of the training model gives, for a synthetic image', async () => {
    // A synthetic image cropped to 56x40, which the model cannot take as it is: the page must pad and crop.
    await generateSynthetic({ root: join(work, 'data'), seed: 5, size: 64, counts: { train: 1, val: 1, 'val-shifted': 1 } });
    const image = join(work, 'synthetic.png');
    await sharp(join(work, 'data/val/images/val-00000.png')).extract({ left: 3, top: 5, width: 56, height: 40 }).png().toFile(image);
    const [maskFile] = await predictFiles(model, image, join(work, 'node'), { palette: PALETTE, mean: [124, 116, 104], std: [58, 57, 57] });
    const node = await sharp(maskFile).removeAlpha().raw().toBuffer({ resolveWithObject: true });

    expect([node.info.width, node.info.height]).toEqual([56, 40]);
    const distinct = new Set(Array.from({ length: 56 * 40 }, (_, i) => node.data.subarray(3 * i, 3 * i + 3).join(',')));
    expect(distinct.size).toBeGreaterThan(1);

    // The page's own choice (WebGL when the browser has it), then the wasm fallback forced.
    for (const backend of ['', 'wasm']) {
      const page = await browser.newPage();
      page.on('console', (m) => m.type() === 'error' && console.error(`page: ${m.text()}`));
      await page.goto(`${url}?model=test-model/model.json&sample=none${backend ? `&backend=${backend}` : ''}`);
      await page.waitForSelector('body[data-state="ready"], body[data-state="error"]');
      const result = await pick(page, image);
      console.log(`browser test: backend ${result.backend}, ${result.width}x${result.height}, ${result.ms.toFixed(1)} ms (first run ${result.firstMs.toFixed(1)} ms)`);
      if (backend) expect(result.backend).toBe(backend);
      expect(await page.locator('#timing').textContent()).toContain(`on the ${result.backend} backend`);
      const mask = await renderedMask(page);
      expect([mask.width, mask.height]).toEqual([56, 40]);
      const differing = mask.rgb.filter((v, i) => v !== node.data[i]).length;
      expect(differing, `mask bytes that differ from the Node prediction on ${result.backend}`).toBe(0);
      await page.close();
    }
  });

  it('runs the bundled model on the bundled sample as plain tfjs does in Node', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('body[data-state="done"], body[data-state="error"]');
    const state = await page.evaluate(() => window.dropclassDemo);
    expect(state.error).toBeUndefined();
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
    const legend = await page.locator('#legend li').allTextContents();
    expect(legend.map((t) => t.replace(/ [\d.]+%$/, ''))).toEqual(loaded.metadata.classNames);
    await page.close();
  });
});
