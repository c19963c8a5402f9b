import { type SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackbone } from '@dropclass/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainFcn } from './index.js';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cliPackage = createRequire(import.meta.url).resolve('@dropclass/cli/package.json');
const bin = join(dirname(cliPackage), 'dist/bin/dropclass.js');

/** Runs the `dropclass` command as a user would. */
function dropclass(args: string[], options: SpawnOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { ...options, env: { ...process.env, DROPCLASS_BACKEND: 'wasm', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('examples/custom-backbone as a plugin', () => {
  let out: string;
  beforeAll(async () => {
    expect(existsSync(join(here, 'dist/index.js')), 'build the example first (npm run build -w examples/custom-backbone)').toBe(true);
    out = await mkdtemp(join(tmpdir(), 'plain-fcn-run-'));
  });
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('registers its adapter when imported, with its defaults and option errors', () => {
    expect(getBackbone('plain-fcn')).toBe(plainFcn);
    expect(plainFcn.parseOptions({})).toEqual({ width: 16, layers: 3 });
    expect(() => plainFcn.parseOptions({ width: 0, depth: 2 })).toThrow(/^invalid options for the plain-fcn backbone:\n {2}width: Too small: expected number to be >0\n {2}depth: unknown option: remove it or check its spelling$/);
  });

  it('dropclass train --config plain-fcn.json trains it, and dropclass eval and predict load it by its package', async () => {
    const config = join(here, 'plain-fcn.json');
    const run = join(out, 'run');
    // run from another directory: the package is found from the config file's directory
    const trained = await dropclass(['train', '--config', config, '--out', run], { cwd: out });
    expect(trained.stderr).toMatch(/DropClass plain-fcn: [\d,]+ trainable parameters/);
    expect(trained.code).toBe(0);
    const latest = JSON.parse(await readFile(join(run, 'checkpoints/latest.json'), 'utf8'));
    const saved = JSON.parse(await readFile(join(run, 'checkpoints', latest.dir, 'dropclass.json'), 'utf8'));
    expect(saved.step).toBe(30);
    expect(saved.backbone.source).toEqual({ kind: 'plain-fcn', package: '@dropclass/example-custom-backbone', options: { width: 16, layers: 3 } });
    const evalFile = JSON.parse(await readFile(join(run, 'eval.json'), 'utf8'));
    expect(Object.keys(evalFile.splits)).toEqual(['val', 'val-shifted']);

    // eval from the run directory: the command imports the package the model names
    const evaluated = await dropclass(['eval', '--model', run, '--split', 'val', '--format', 'json'], { cwd: here });
    expect(evaluated.code).toBe(0);
    const report = JSON.parse(evaluated.stdout).splits.val;
    expect(report.mIoU).toBeGreaterThan(0);
    expect(report.mIoU).toBeLessThanOrEqual(1);

    const predicted = await dropclass(['predict', '--model', run, '--input', join(here, 'data/synthetic/val/images'), '--out', join(out, 'masks'), '--flip'], { cwd: here });
    expect(predicted.stderr).toMatch(/wrote \d+ files/);
    expect(predicted.code).toBe(0);
  });

  it('a model whose backbone package is not installed says which package to install', async () => {
    const run = join(out, 'run');
    const latest = JSON.parse(await readFile(join(run, 'checkpoints/latest.json'), 'utf8'));
    const infoFile = join(run, 'checkpoints', latest.dir, 'dropclass.json');
    const info = JSON.parse(await readFile(infoFile, 'utf8'));
    info.backbone.source.package = '@acme/backbone-not-installed';
    await writeFile(infoFile, JSON.stringify(info));
    const evaluated = await dropclass(['eval', '--model', run, '--split', 'val'], { cwd: out });
    expect(evaluated.code).toBe(1);
    // the backbone holds a custom layer (LayerScale), which tfjs alone cannot load
    expect(evaluated.stderr).toMatch(/this model needs the plain-fcn backbone from @acme\/backbone-not-installed\. backbone package @acme\/backbone-not-installed is not installed .*: run npm install @acme\/backbone-not-installed/);
    expect(evaluated.stderr).not.toMatch(/Unknown layer/);
  });
});
