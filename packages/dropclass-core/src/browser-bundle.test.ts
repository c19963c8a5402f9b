// The main entry, `@dropclass/core`, runs in a browser: bundled for one, with tfjs left to the
// application, it reaches no Node built-in (those are in `@dropclass/core/node`). The engine package,
// which `startBackend` imports by a name in a variable, stays outside the bundle.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { sideEffects: string[] };
const entries = ['src/index.ts', 'dist/index.js'].filter((entry) => entry.startsWith('src/') || existsSync(join(root, entry)));
const builtins = builtinModules.filter((m) => !m.startsWith('_')).join('|');
/** A `node:` specifier anywhere, or a Node built-in imported or required by its bare name. */
const NODE_BUILTIN = new RegExp(`["']node:[\\w/]+["']|(\\bfrom|\\bimport|\\brequire)\\s*\\(?\\s*["'](${builtins})["']`);

/** esbuild's options for a browser bundle that leaves tfjs and the engine to the application. */
const browserBundle = {
  bundle: true,
  platform: 'browser' as const,
  format: 'esm' as const,
  write: false as const,
  logLevel: 'silent' as const,
  external: ['@tensorflow/*', '@dropclass/tfjs-wasm-train'],
};

describe('the main entry in a browser', () => {
  it.each(entries)('%s bundles for a browser without any Node built-in', async (entry) => {
    const result = await build({ ...browserBundle, entryPoints: [join(root, entry)], metafile: true });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0].text;
    expect(code.match(NODE_BUILTIN)?.[0]).toBeUndefined();
    // Every module of the bundle is this package's or a browser-safe dependency of it.
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((path) => /(^|\/)node\//.test(path) && !path.includes('node_modules'))).toEqual([]);
  });
});

describe('the side effects package.json declares', () => {
  it('list every module of the main entry that registers something when it loads, so that bundlers keep it', () => {
    const registering = (readdirSync(join(root, 'src'), { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !/^(node|bin|conformance|reference)\//.test(file))
      .filter((file) => /^[\w.]*register\w*\(/m.test(readFileSync(join(root, 'src', file), 'utf8')))
      .map((file) => `./dist/${file.replace(/\.ts$/, '.js')}`)
      .sort();
    expect(registering).toEqual([...manifest.sideEffects].sort());
  });

  it('keep the layer classes in a bundle of an application that uses the built package, and drop the package from one that does not use it', async () => {
    const bundle = async (contents: string) => (await build({ ...browserBundle, stdin: { contents, resolveDir: root, loader: 'js' } })).outputFiles[0].text;
    const used = await bundle("import { paddedInputSize } from '@dropclass/core'; console.log(paddedInputSize(3, { inputSizeMultiple: 8, minInputSize: 8 }));");
    for (const name of ['DropClassHead', 'DropClassBatchNormalization', 'BilinearUpSampling2D']) expect(used, name).toContain(`"${name}"`);
    const unused = await bundle("import { paddedInputSize } from '@dropclass/core'; export const size = 8;");
    expect(unused).not.toContain('DropClassHead');
  });
});
