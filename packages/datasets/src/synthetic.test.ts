import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SYNTHETIC_OBJECTS, computeClassFrequencies, formatSyntheticStats, generateSynthetic, openDataset } from './index.js';

const counts = { train: 120, val: 20, 'val-shifted': 20 };

describe('synthetic long-tailed, context-biased benchmark', () => {
  it('is deterministic: the same seed writes byte-identical files', async () => {
    const [a, b] = [await mkdtemp(join(tmpdir(), 'synth-a-')), await mkdtemp(join(tmpdir(), 'synth-b-'))];
    onTestFinished(() => rm(a, { recursive: true, force: true }));
    onTestFinished(() => rm(b, { recursive: true, force: true }));
    await generateSynthetic({ root: a, seed: 5, counts: { train: 6, val: 2, 'val-shifted': 2 } });
    await generateSynthetic({ root: b, seed: 5, counts: { train: 6, val: 2, 'val-shifted': 2 } });
    for (const dir of ['train/images', 'train/masks', 'val-shifted/masks']) {
      const names = await readdir(join(a, dir));
      expect(names.length).toBeGreaterThan(0);
      for (const n of names) expect((await readFile(join(b, dir, n))).equals(await readFile(join(a, dir, n)))).toBe(true);
    }
    const c = await mkdtemp(join(tmpdir(), 'synth-c-'));
    onTestFinished(() => rm(c, { recursive: true, force: true }));
    await generateSynthetic({ root: c, seed: 6, counts: { train: 6, val: 2, 'val-shifted': 2 } });
    expect((await readFile(join(c, 'train/masks/train-00000.png'))).equals(await readFile(join(a, 'train/masks/train-00000.png')))).toBe(false);
  });

  it('has a long tail, a context bias in train and val, and none in val-shifted', async () => {
    const root = await mkdtemp(join(tmpdir(), 'synth-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const stats = await generateSynthetic({ root, seed: 0, counts });
    const train = stats.splits.train;
    const present = train.pixelFrequency.filter((f) => f > 0);
    expect(Math.max(...present) / Math.min(...present)).toBeGreaterThan(100);
    expect(train.pixelFrequency.filter((f) => f > 0 && f < 0.01).length).toBeGreaterThanOrEqual(3);
    for (const o of SYNTHETIC_OBJECTS.slice(0, 2)) {
      expect(train.onHomeContext[o]).toBeGreaterThan(0.75);
      expect(stats.splits['val-shifted'].onHomeContext[o]).toBe(0);
    }
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    expect(ds.length).toBe(120);
    const measured = await computeClassFrequencies(ds);
    measured.fraction.forEach((f, c) => expect(f).toBeCloseTo(train.pixelFrequency[c], 10));
    expect(formatSyntheticStats(stats)).toMatch(/\| crab +\| object +\| sand/);
  });
});
