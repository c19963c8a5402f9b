import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const packageRoot = join(import.meta.dirname, '..');
const example = join(packageRoot, 'examples/train-conv.mjs');

describe('examples/train-conv.mjs', () => {
  it('is the example the README shows', () => {
    const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
    const shown = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(shown).toBe(readFileSync(example, 'utf8'));
  });

  it('trains the conv net on wasm in a process of its own: the loss falls to under half', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [example], { cwd: packageRoot, env: { ...process.env, DROPCLASS_THREADS: '2' } });
    expect(stderr).toContain('tfjs-wasm-train: backend wasm (2 threads)');
    const match = /^backend wasm \(2 threads\): loss ([\d.]+) -> ([\d.]+), training accuracy ([\d.]+)$/m.exec(stdout);
    expect(match, stdout).not.toBeNull();
    expect(Number(match![2])).toBeLessThan(Number(match![1]) / 2);
  });
});
