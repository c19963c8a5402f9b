import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { initBackend } from '../backend/select.js';
import { checkReferenceFile, compareArrays, findReferenceFiles } from './check.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = resolve(here, '../..');
/** The reference vectors live beside the repository: `<repo>/../shared/dropclass/reference`. */
const referenceDir = process.env.DROPCLASS_REFERENCE_DIR ?? resolve(packageRoot, '../../../shared/dropclass/reference');
const bin = join(packageRoot, 'dist/bin/dropclass-reference.js');
const run = promisify(execFile);

async function runBin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env: { ...process.env, DROPCLASS_BACKEND: 'wasm' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('reference vectors', () => {
  beforeAll(async () => {
    expect(existsSync(referenceDir), `reference vectors not found at ${referenceDir}; set DROPCLASS_REFERENCE_DIR`).toBe(true);
    await initBackend({ backend: 'wasm', quiet: true });
  });

  it('matches every output and gradient of every reference file within 1e-4 relative / 1e-5 absolute', async () => {
    const files = await findReferenceFiles(referenceDir);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) {
      const result = await checkReferenceFile(file);
      const off = result.checks.filter((c) => !c.ok).map((c) => `${c.quantity}: abs ${c.maxAbsError}, rel ${c.maxRelError}`);
      expect(off, file).toEqual([]);
      expect(result.checks.length).toBe(14);
    }
  });

  it('compareArrays flags an entry off by more than the tolerance and accepts one within it', () => {
    expect(compareArrays('x', [1.00005, 0], [1, 0]).ok).toBe(true);
    expect(compareArrays('x', [1.001, 0], [1, 0]).ok).toBe(false);
    expect(compareArrays('x', [0, 2e-5], [0, 0]).ok).toBe(false);
    expect(compareArrays('x', [1], [1, 2]).ok).toBe(false);
  });

  it('the dropclass-reference command passes on the shipped vectors and exits 1 on a perturbed file', async () => {
    const good = await runBin(referenceDir);
    expect(good.stdout).toMatch(/PASS .*dropclass-drop\.json/);
    expect(good.stdout).toMatch(/max abs .* max rel/);
    expect(good.code).toBe(0);

    const dir = await mkdtemp(join(tmpdir(), 'dropclass-reference-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const [first] = await findReferenceFiles(referenceDir);
    const data = JSON.parse(await readFile(first, 'utf8'));
    data.gradients.W[0] += 1e-2;
    await writeFile(join(dir, 'perturbed.json'), JSON.stringify(data));
    const bad = await runBin(dir);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/OFF gradients\.W/);
    expect(bad.stdout).toMatch(/FAIL .*perturbed\.json/);
  });

  it('refuses a file of another format with its path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dropclass-reference-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'other.json'), JSON.stringify({ format: 'something-else' }));
    await expect(checkReferenceFile(join(dir, 'other.json'))).rejects.toThrow(/other\.json: format is "something-else", expected "dropclass-reference\/1"/);
  });
});
