#!/usr/bin/env node
// Screenshots the built page (dist/) after it segmented the bundled sample, with Debian's Chromium:
// node scripts/screenshot.mjs [OUT.png]
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const here = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(here, 'screenshot.png'));
const { server, url } = await serve(join(here, 'dist'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  await page.goto(url);
  await page.waitForFunction(() => window.dropclassDemo?.events.length > 0 || document.body.dataset.state === 'error', null, { timeout: 120_000 });
  const state = await page.evaluate(() => window.dropclassDemo);
  if (state.error) throw new Error(`the page failed: ${state.error}`);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out} (${state.backend.label}, inference ${state.result.inferenceMs.toFixed(1)} ms)`);
} finally {
  await browser.close();
  server.close();
}
