import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@dropclass/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from './config.js';
import { type Losses, checkTorch, compareParity, runParity } from './parity.js';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/** Losses that wander away from `base` by `relative` at every step (alternating sign). */
const wander = (base: number[], relative: number): Losses[] =>
  base.map((v, i) => {
    const total = v * (1 + (i % 2 ? relative : -relative) * Math.sqrt(i + 1));
    return { lossCe: total, lossDrop: 0, lossSup: 0, total };
  });

describe('compareParity', () => {
  const base = [2, 1.9, 1.7, 1.6, 1.5, 1.45];
  const steps = base.map(() => ({ droppedClass: -1, progress: 0, learningRate: 0.01 }));
  const torch = { torch: wander(base, 1e-6), torch64: wander(base, 0) };
  const weights = (ours: number[][]) => ({
    names: ['conv/kernel', 'head/selection_bias'],
    torch: [[1, 2, 3], [1e-9, -1e-9, 0]],
    torch64: [[1.001, 2, 3], [-2e-9, 2e-9, 1e-9]],
    ours,
  });

  it('passes a run that stays as close to PyTorch float32 as PyTorch float32 stays to float64', () => {
    const result = compareParity('dropclass', steps.map((s, i) => ({ ...s, losses: wander(base, 1.5e-6)[i] })), weights([[1.0015, 2, 3], [5e-9, 0, 0]]), torch);
    expect(result.passed).toBe(true);
    expect(result.undetermined.map((p) => p.name)).toEqual(['head/selection_bias']);
    expect(result.worstParameter.name).toBe('conv/kernel');
  });

  it('fails a run whose losses differ from the first step on', () => {
    const result = compareParity('dropclass', steps.map((s, i) => ({ ...s, losses: wander(base.map((v) => v * 1.004), 0)[i] })), weights([[1, 2, 3], [0, 0, 0]]), torch);
    expect(result.firstStep).toBeGreaterThan(1e-3);
    expect(result.passed).toBe(false);
  });

  it('fails a run whose weights end further from PyTorch than its own float32 error allows', () => {
    const result = compareParity('dropclass', steps.map((s, i) => ({ ...s, losses: torch.torch[i] })), weights([[1.01, 2.02, 3], [0, 0, 0]]), torch);
    expect(result.worstParameter.relative / result.worstParameter.torchDrift).toBeGreaterThan(3);
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
    expect(result.firstStep).toBeLessThan(1e-4);
    expect(result.passed).toBe(true);
  }, 120_000);
  if (!hasTorch) console.log(`dropclass parity: ${PYTHON} has no torch, so the lockstep run is skipped (apt-get install python3-torch to run it)`);
});
