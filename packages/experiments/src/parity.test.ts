import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '@dropclass/train';
import { type Losses, type ParityStep, checkTorch, compareParity, runParity } from './parity.js';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const losses = (total: number): Losses => ({ lossCe: total, lossDrop: 0, lossSup: 0, total });

/** Steps whose loss, update and statistics differ from float64 by `ours` and PyTorch float32's by `torch`. */
const rows = (n: number, ours: { loss: number; update: number }, torch: { loss: number; update: number }): ParityStep[] =>
  Array.from({ length: n }, (_, step) => ({
    step,
    droppedClass: -1,
    progress: step / n,
    learningRate: 0.01,
    ours: losses(2 * (1 + ours.loss)),
    torch32: losses(2 * (1 + torch.loss)),
    torch64: losses(2),
    update: { ours: ours.update, torch32: torch.update },
    statistics: { ours: ours.update, torch32: torch.update },
  }));
const free = (n: number, parting: number) => ({
  ours: Array.from({ length: n }, (_, s) => losses(s < parting ? 1 : 2)),
  torch32: Array.from({ length: n }, () => losses(1)),
  torch64: Array.from({ length: n }, () => losses(1)),
});

describe('compareParity', () => {
  it('passes steps that stay as close to float64 as PyTorch float32 does, and reports where free runs part', () => {
    const result = compareParity('dropclass', rows(6, { loss: 2e-6, update: 3e-5 }, { loss: 1e-6, update: 2e-5 }), free(6, 4));
    expect(result.passed).toBe(true);
    expect(result.free).toMatchObject({ oursVsTorch32: 4, torch32VsTorch64: null });
  });

  it('fails steps whose loss is off by far more than PyTorch float32 is', () => {
    const result = compareParity('dropclass', rows(6, { loss: 4e-3, update: 3e-5 }, { loss: 1e-6, update: 2e-5 }), free(6, 6));
    expect(result.worst.loss.ratio).toBeGreaterThan(10);
    expect(result.passed).toBe(false);
  });

  it('fails steps whose weight update is off by far more than PyTorch float32 is', () => {
    const result = compareParity('dropclass', rows(6, { loss: 1e-6, update: 1e-2 }, { loss: 1e-6, update: 2e-5 }), free(6, 6));
    expect(result.worst.update.ratio).toBeGreaterThan(100);
    expect(result.worst.statistics.ratio).toBeGreaterThan(100);
    expect(result.passed).toBe(false);
  });
});

describe('dropclass parity', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    dir = await mkdtemp(join(tmpdir(), 'dropclass-parity-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('says how to install PyTorch when the interpreter has none', () => {
    expect(() => checkTorch(join(dir, 'no-such-python'))).toThrow(/apt-get install python3-torch/);
  });

  it.skipIf(!hasTorch)('trains a tiny U-Net here and in the PyTorch twin in lockstep, within tolerance', async () => {
    const config = parseRunConfig({
      backbone: { kind: 'unet', options: { base: 4, depth: 2 } },
      dataset: { kind: 'folder', root: join(dir, 'data'), generate: { seed: 0, size: 32, train: 8, val: 2, valShifted: 2 } },
      crop: [32, 32],
      batchSize: 2,
      iterations: 4,
      learningRate: 0.05,
      seed: 0,
    });
    const result = await runParity({ config, steps: 4, out: join(dir, 'run'), python: PYTHON, log: () => {} });
    expect(result.steps.map((s) => s.step)).toEqual([0, 1, 2, 3]);
    expect(result.steps.map((s) => s.progress)).toEqual([0, 0.25, 0.5, 0.75]);
    // The same state gives the same step: losses and updates agree far below 1e-3.
    for (const s of result.steps) {
      expect(Math.abs(s.ours.total - s.torch64.total) / s.torch64.total).toBeLessThan(1e-4);
      expect(s.update.ours).toBeLessThan(1e-3);
    }
    expect(result.passed).toBe(true);
  }, 120_000);
  if (!hasTorch) console.log(`dropclass parity: ${PYTHON} has no torch, so the lockstep run is skipped (apt-get install python3-torch to run it)`);
});
