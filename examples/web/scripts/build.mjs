#!/usr/bin/env node
// Bundles the page with esbuild into dist/ (or the folder given): index.html, main.js, the
// tfjs wasm binaries (the fallback backend) and the bundled model.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const here = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(here, 'dist'));
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  outfile: join(out, 'main.js'),
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
console.log(`built the page into ${out}`);
