#!/usr/bin/env node
// Bundles the page with esbuild into dist/ (or the folder given): index.html, main.js (the page),
// worker.js (the inference worker, with tfjs and its WebGPU, WebGL, wasm and cpu backends), the tfjs
// wasm binaries, the bundled model, and _headers (the cross-origin isolation headers, for hosts that
// read that file).
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { ISOLATION_HEADERS } from './headers.mjs';

const here = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(here, 'dist'));
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { main: join(here, 'src/main.ts'), worker: join(here, 'src/worker.ts') },
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  outdir: out,
  logLevel: 'warning',
});
cpSync(join(here, 'src/index.html'), join(out, 'index.html'));
cpSync(join(here, 'src/style.css'), join(out, 'style.css'));
cpSync(join(here, 'src/sample.png'), join(out, 'sample.png'));
cpSync(join(here, 'model'), join(out, 'model'), { recursive: true });
const wasmDir = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
mkdirSync(join(out, 'wasm'));
for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
  cpSync(join(wasmDir, file), join(out, 'wasm', file));
}
// What a static host must send for wasm threads (SharedArrayBuffer): the format Netlify and
// Cloudflare Pages read; scripts/serve.mjs sends the same headers.
writeFileSync(join(out, '_headers'), `/*\n${Object.entries(ISOLATION_HEADERS).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
console.log(`built the page into ${out}`);
