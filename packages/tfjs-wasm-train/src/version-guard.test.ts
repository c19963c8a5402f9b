import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { THREADED_WASM_VERSIONS, installedWasmVersion, threadedWasmSupport } from './version-guard.js';

describe('the version guard of the multi-threaded wasm start-up', () => {
  it('reads the installed version of @tensorflow/tfjs-backend-wasm from its package.json', () => {
    const manifest = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
    expect(installedWasmVersion()).toBe(JSON.parse(readFileSync(manifest, 'utf8')).version);
  });

  it('supports the installed version, the one it was written and tested against', () => {
    expect(threadedWasmSupport()).toEqual({ supported: true, version: installedWasmVersion() });
  });

  it('supports the patch releases of that version', () => {
    expect(threadedWasmSupport('4.22.0').supported).toBe(true);
    expect(threadedWasmSupport('4.22.7').supported).toBe(true);
  });

  for (const version of ['4.23.0', '4.21.0', '5.0.0', '4.23.0-rc.1']) {
    it(`falls back to one thread on ${version}, with a one-line message naming the version and the range`, () => {
      const support = threadedWasmSupport(version);
      expect(support.supported).toBe(false);
      expect(support.version).toBe(version);
      expect(support.message).toBe(
        `tfjs-wasm-train: @tensorflow/tfjs-backend-wasm ${version} is installed; the multi-threaded start-up supports ${THREADED_WASM_VERSIONS} only, so wasm runs on 1 thread`,
      );
      expect(support.message).not.toContain('\n');
    });
  }
});
