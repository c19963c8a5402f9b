import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BUNDLED_TORCH_ANCHOR, type BenchOptions, runTorchAnchor } from './bench.js';
import { type PointsReport, formatPointsBench, runPointsBench, writePointsChart } from './bench-points.js';
import { benchConfigs, isPointsConfig, pointsPreset } from './bench-recipe.js';
import { windowCount } from './bench-worker.js';

const PYTHON = '/usr/bin/python3';
const torchImportable = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const tiny: BenchOptions = { steps: 1, warmup: 0, batch: 1, size: 8, classes: 3, base: 2, depth: 1, deeplab: false, deeplabSize: 8, python: PYTHON, torchScript: BUNDLED_TORCH_ANCHOR };

describe('the PyTorch anchor of the benchmark', () => {
  it('ships with the package and is the default script', () => {
    expect(BUNDLED_TORCH_ANCHOR).toMatch(/packages[\\/]experiments[\\/]python[\\/]torch_bench\.py$/);
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
      error: expect.stringMatching(/^torch_bench\.py: PyTorch is not importable by .*python3.*apt-get install python3-torch.*\/usr\/bin\/python3 \(or pass --no-torch\)$/),
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

describe('the points configurations (each point in its own process on each side)', () => {
  it('are deeplab-512, cityscapes and sweep-deeplab beside default and main-job', () => {
    expect(Object.keys(benchConfigs())).toEqual(['default', 'main-job', 'deeplab-512', 'cityscapes', 'sweep-deeplab']);
    expect(['default', 'main-job'].map(isPointsConfig)).toEqual([false, false]);
    expect(['deeplab-512', 'cityscapes', 'sweep-deeplab'].map(isPointsConfig)).toEqual([true, true, true]);
    const full = pointsPreset('cityscapes', { python: PYTHON, steps: 3 }).recipe;
    expect(full).toMatchObject({ crops: [[512, 1024]], batches: [2], classes: 19, steps: 3, backbone: { kind: 'deeplabv3', options: { layout: 'resnet18' } } });
    expect(pointsPreset('sweep-deeplab', { python: PYTHON, layout: 'resnet50' }).recipe.backbone.options.layout).toBe('resnet50');
    expect(pointsPreset('sweep-deeplab', { python: PYTHON, quick: true }).recipe.crops).toHaveLength(2);
  });

  it('counts the windows as core\'s sliding-window inference places them', () => {
    expect(windowCount({ name: 'a', height: 512, width: 512 })).toBe(1);
    expect(windowCount({ name: 'b', height: 1024, width: 2048, window: [512, 512] })).toBe(3 * 7);
    expect(windowCount({ name: 'c', height: 1024, width: 2048, window: [512, 1024], stride: [512, 1024] })).toBe(2 * 2);
  });

  it(`times training and inference here and in PyTorch, with peak memory, and draws the sweep (torch ${torchImportable ? 'present' : 'absent'})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dropclass-points-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const lines: string[] = [];
    const report: PointsReport = await runPointsBench(pointsPreset('deeplab-512', { python: PYTHON, torchScript: BUNDLED_TORCH_ANCHOR, quick: true, threads: 2 }), (l) => lines.push(l));
    expect(report).toMatchObject({ kind: 'points', config: 'deeplab-512', machine: { cpu: expect.any(String), threads: 2, backend: 'wasm' } });
    expect(report.train.map((p) => `${p.batch}x${p.height}x${p.width} ${p.mode}`)).toEqual(['2x32x32 baseline', '2x32x32 dropclass']);
    for (const p of report.train) {
      expect(p.ours).toMatchObject({ medianMs: expect.any(Number), maxRssMiB: expect.any(Number), tensorsLeft: 0 });
      const ours = p.ours as { tensorsBefore: number; tensorsAfter: number; params: number };
      expect(ours.tensorsAfter).toBe(ours.tensorsBefore);
      if (torchImportable) {
        // The same network on both sides: as many trainable parameters.
        expect(p.torch).toMatchObject({ medianMs: expect.any(Number), maxRssMiB: expect.any(Number), params: ours.params });
        expect(p.ratio!.time).toBeGreaterThan(0);
        expect(p.ratio!.memory).toBeGreaterThan(0);
      } else {
        expect(p.torch).toMatchObject({ error: expect.stringMatching(/apt-get install python3-torch/) });
      }
    }
    expect(report.inference!.map((p) => [p.name, p.windows])).toEqual([['32x32', 1], ['96x64, 32x32 windows', 15]]);
    for (const p of report.inference!) {
      expect(p.ours).toMatchObject({ medianMs: expect.any(Number) });
      if (torchImportable) expect(p.torch).toMatchObject({ medianMs: expect.any(Number) });
    }
    expect(lines.some((l) => /tfjs step 2\/2: \d+ ms/.test(l))).toBe(true);
    if (torchImportable) expect(lines.some((l) => /PyTorch step 2\/2: \d+ ms/.test(l))).toBe(true);
    const text = formatPointsBench(report);
    expect(text).toMatch(/^configuration deeplab-512: DeepLabV3-resnet18 \(output stride 16, width 0\.125\), 4 classes/);
    expect(text).toMatch(/machine: .+, \d+ cores; ours: wasm 2 threads/);
    expect(text).toMatch(/\n2 +32x32 +dropclass +[\d.]+ +[\d.]+ /);
    expect(text).toMatch(/96x64, 32x32 windows +15 +[\d.]+/);
    const chart = join(dir, 'chart.png');
    await writePointsChart(report, chart);
    expect((await readFile(chart)).subarray(1, 4).toString()).toBe('PNG');
  }, 300_000);

  it('says what to install when the anchor cannot import torch, and still measures our side', async () => {
    const report = await runPointsBench(pointsPreset('sweep-deeplab', { python: '/nonexistent/python3', torchScript: BUNDLED_TORCH_ANCHOR, quick: true, threads: 1 }));
    expect(report.train).toHaveLength(4);
    expect(report.inference).toBeUndefined();
    expect(report.torchError).toMatch(/\/nonexistent\/python3 does not exist/);
    for (const p of report.train) expect(p.ours).toMatchObject({ medianMs: expect.any(Number) });
    expect(formatPointsBench(report)).toMatch(/PyTorch anchor: .*does not exist/);
  }, 300_000);
});
