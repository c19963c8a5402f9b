import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BUNDLED_TORCH_ANCHOR, type BenchOptions, runTorchAnchor } from './bench.js';

const PYTHON = '/usr/bin/python3';
const torchImportable = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const tiny: BenchOptions = { steps: 1, warmup: 0, batch: 1, size: 8, classes: 3, base: 2, depth: 1, deeplab: false, deeplabSize: 8, python: PYTHON, torchScript: BUNDLED_TORCH_ANCHOR };

describe('the PyTorch anchor of the benchmark', () => {
  it('ships with the package and is the default script', () => {
    expect(BUNDLED_TORCH_ANCHOR).toMatch(/packages[\\/]experiments[\\/]bench[\\/]torch_unet\.py$/);
    expect(existsSync(BUNDLED_TORCH_ANCHOR)).toBe(true);
  });

  it(`times the same U-Net in PyTorch (torch ${torchImportable ? 'present' : 'absent'} for ${PYTHON})`, async () => {
    const result = await runTorchAnchor(tiny);
    if (torchImportable) {
      expect(result).toMatchObject({ baselineMs: expect.any(Number), dropclassMs: expect.any(Number) });
      const timing = result as { baselineMs: number; dropclassMs: number; params: number };
      expect(timing.baselineMs).toBeGreaterThan(0);
      expect(timing.dropclassMs).toBeGreaterThan(0);
      // The tfjs U-Net's count is compared in cli.test.ts (the bench reports both).
      expect(timing.params).toBeGreaterThan(0);
    } else {
      expect(result).toMatchObject({ error: expect.stringMatching(/apt-get install python3-torch/) });
    }
  });

  it.skipIf(!existsSync(PYTHON))('says how to install torch when python cannot import it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dropclass-notorch-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    // A module named torch that fails to import, ahead of any installed one.
    await writeFile(join(dir, 'torch.py'), 'raise ImportError("No module named torch")\n');
    const saved = process.env.PYTHONPATH;
    process.env.PYTHONPATH = dir;
    onTestFinished(() => {
      if (saved === undefined) delete process.env.PYTHONPATH;
      else process.env.PYTHONPATH = saved;
    });
    const result = await runTorchAnchor(tiny);
    expect(result).toEqual({
      error: expect.stringMatching(/^torch_unet\.py: PyTorch is not importable by .*python3.*apt-get install python3-torch.*\/usr\/bin\/python3 \(or pass --no-torch\)$/),
    });
  });

  it('says how to install python and torch when the interpreter does not exist, and names a missing script', async () => {
    expect(await runTorchAnchor({ ...tiny, python: '/nonexistent/python3' })).toEqual({
      error: expect.stringMatching(/the python interpreter \/nonexistent\/python3 does not exist; .*apt-get install python3-torch.*--no-torch/),
    });
    expect(await runTorchAnchor({ ...tiny, torchScript: '/nonexistent/anchor.py' })).toEqual({
      error: expect.stringMatching(/PyTorch anchor script not found at \/nonexistent\/anchor\.py/),
    });
  });
});
