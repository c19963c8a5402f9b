// The main entry, `@dropclass/core`, runs in a browser: bundled for one, with tfjs left to the
// application, it reaches no Node built-in (those are in `@dropclass/core/node`). The engine package,
// which `startBackend` imports by a name in a variable, stays outside the bundle.
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entries = ['src/index.ts', 'dist/index.js'].filter((entry) => entry.startsWith('src/') || existsSync(join(root, entry)));
const builtins = builtinModules.filter((m) => !m.startsWith('_')).join('|');
/** A `node:` specifier anywhere, or a Node built-in imported or required by its bare name. */
const NODE_BUILTIN = new RegExp(`["']node:[\\w/]+["']|(\\bfrom|\\bimport|\\brequire)\\s*\\(?\\s*["'](${builtins})["']`);

describe('the main entry in a browser', () => {
  it.each(entries)('%s bundles for a browser without any Node built-in', async (entry) => {
    const result = await build({
      entryPoints: [join(root, entry)],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      external: ['@tensorflow/*', '@dropclass/tfjs-wasm-train'],
      metafile: true,
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0].text;
    expect(code.match(NODE_BUILTIN)?.[0]).toBeUndefined();
    // Every module of the bundle is this package's or a browser-safe dependency of it.
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((path) => /(^|\/)node\//.test(path) && !path.includes('node_modules'))).toEqual([]);
  });
});
