#!/usr/bin/env node
// Times the built page (dist/) in headless Chromium with its bundled model: loading, then images of
// 1024x768 and 4000x3000 (downscaled, and in windows at full size) on wasm with one thread and with
// every core, and 1024x768 on WebGL and WebGPU (on SwiftShader where the machine has no GPU);
// and the longest task on the page's own thread while a 4000x3000 image runs. Prints a Markdown
// report and writes it to benchmarks/notes.md (or the file given).
//
// usage: node scripts/build.mjs && node scripts/bench.mjs [OUT.md]
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { serve } from './serve.mjs';

const here = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(here, 'benchmarks/notes.md'));
const work = await mkdtemp(join(tmpdir(), 'dropclass-web-bench-'));
const images = {
  '1024x768': join(work, 'photo-1024x768.png'),
  '4000x3000': join(work, 'photo-4000x3000.png'),
};
await sharp(join(here, 'src/sample.png')).resize(1024, 768).png().toFile(images['1024x768']);
await sharp(join(here, 'src/sample.png')).resize(4000, 3000).png({ compressionLevel: 1 }).toFile(images['4000x3000']);

const loadBefore = loadavg()[0];
const { server, url } = await serve(join(here, 'dist'));
const gpuArgs = process.env.BENCH_GPU_ARGS?.split(' ').filter(Boolean) ?? ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...gpuArgs],
});

/** Opens the page with `query`; returns it with the time from navigation to the model being ready. */
async function open(query) {
  const page = await browser.newPage();
  // Long tasks (over 50 ms) on the page's thread, as the browser reports them.
  await page.addInitScript(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: true });
  });
  const start = Date.now();
  await page.goto(`${url}?sample=none&${query}`);
  await page.waitForFunction(() => window.dropclassDemo?.backend || document.body.dataset.state === 'error', null, { timeout: 600_000 });
  const error = await page.evaluate(() => window.dropclassDemo.error);
  if (error) throw new Error(`the page did not start with ?${query}: ${error}`);
  return { page, loadMs: Date.now() - start, label: await page.evaluate(() => window.dropclassDemo.backend.label) };
}

/** Picks a file and returns the page's timings for it (and the longest task on the page's thread meanwhile). */
async function time(page, file) {
  const before = await page.evaluate(() => {
    window.longTasks.length = 0;
    return window.dropclassDemo.events.length;
  });
  await page.setInputFiles('#file', file);
  await page.waitForFunction((n) => window.dropclassDemo.events.length > n, before, { timeout: 600_000 });
  const { event, result, longest } = await page.evaluate(() => ({
    event: window.dropclassDemo.events.at(-1),
    result: window.dropclassDemo.result,
    longest: Math.max(0, ...window.longTasks),
  }));
  if (event.outcome !== 'done') throw new Error(`${file}: ${event.message}`);
  return { ...result, longest };
}

const rows = [];
const ms = (v) => `${Math.round(v)}`;
const skipped = [];
async function measure(query, cases) {
  let opened;
  try {
    opened = await open(query);
  } catch (error) {
    skipped.push(`?${query}: ${error.message}`);
    console.error(skipped.at(-1));
    return;
  }
  const { page, loadMs, label } = opened;
  console.error(`${label} (?${query}): ready in ${loadMs} ms`);
  for (const [size, mode, runs] of cases) {
    if (mode === 'window') await page.selectOption('#large', 'window');
    for (let run = 1; run <= runs; run++) {
      const r = await time(page, images[size]);
      console.error(`  ${size} ${r.plan} run ${run}: inference ${ms(r.inferenceMs)} ms`);
      rows.push({ ...r, backend: label, query, load: loadMs, size, run });
    }
    if (mode === 'window') await page.selectOption('#large', 'downscale');
  }
  await page.close();
}

const version = browser.version();
const cores = await (async () => {
  const { page } = await open('backend=wasm');
  const n = await page.evaluate(() => navigator.hardwareConcurrency);
  await page.close();
  return n;
})();
try {
  await measure('backend=wasm&threads=1', [['1024x768', 'downscale', 3], ['4000x3000', 'downscale', 2], ['4000x3000', 'window', 1]]);
  await measure('backend=wasm', [['1024x768', 'downscale', 3], ['4000x3000', 'downscale', 2], ['4000x3000', 'window', 1]]);
  // Software WebGL and WebGPU take minutes at this size: one run each, the first (kernels compiled in it).
  await measure('backend=webgl', [['1024x768', 'downscale', 1]]);
  await measure('backend=webgpu', [['1024x768', 'downscale', 1]]);
  const { page, label } = await open('');
  await page.close();
  rows.automatic = label;
} finally {
  await browser.close().catch(() => {});
  server.close();
  await rm(work, { recursive: true, force: true });
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const loadAfter = loadavg()[0];
const lines = [
  '# The web page: measured speed',
  '',
  `Written by \`node scripts/bench.mjs\` (after \`node scripts/build.mjs\`) in \`examples/web\` on ${new Date().toISOString().slice(0, 10)}:`,
  `${cpu}, ${cpus().length} logical cores (navigator.hardwareConcurrency ${cores}), headless Chromium ${version} with`,
  `\`${gpuArgs.join(' ')}\` (BENCH_GPU_ARGS), the bundled model (U-Net base 8, depth 3, float16).`,
  'Images: `src/sample.png` resized. Times are the page\'s own, measured in its worker for each run alone:',
  'inference from the pixels to the class map (for a downscaled image: the resize, the pass and the class map resized back;',
  'in windows: every window), decoding the file, and drawing the mask and overlay. "Longest task" is the longest task the',
  'browser reports on the page\'s own thread during the run (0: none over 50 ms). The first run at a size includes,',
  'on WebGL and WebGPU, compiling the kernels for it. One run of each line, on a shared machine (1-minute load average',
  `${loadBefore.toFixed(1)} when it started, ${loadAfter.toFixed(1)} when it ended): read them as orders of magnitude.`,
  '',
  '| backend | address | page ready (ms) | image | how | run | inference (ms) | decoding (ms) | mask and overlay (ms) | longest task on the page\'s thread (ms) |',
  '| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.backend} | \`?${r.query}\` | ${r.load} | ${r.size} | ${r.plan} | ${r.run} | ${ms(r.inferenceMs)} | ${ms(r.decodeMs)} | ${ms(r.renderMs)} | ${ms(r.longest)} |`),
  '',
  `With no \`?backend=\`, the page chose ${rows.automatic} here.`,
  ...skipped.map((line) => `Not measured: ${line}`),
  '',
];
const report = lines.join('\n');
console.log(report);
await mkdir(dirname(out), { recursive: true });
await writeFile(out, report);
console.error(`wrote ${out}`);
