import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  SYNTHETIC_CONTEXTS,
  SYNTHETIC_OBJECTS,
  type SyntheticSplit,
  computeClassFrequencies,
  ensureSynthetic,
  formatSyntheticStats,
  generateSynthetic,
  openDataset,
  planSynthetic,
  readLabelPng,
  syntheticLayout,
} from './index.js';

/** 8-connected components of each value in a label map. */
function componentsPerValue(data: Uint8Array, size: number): Map<number, number> {
  const seen = new Uint8Array(data.length);
  const counts = new Map<number, number>();
  for (let start = 0; start < data.length; start++) {
    if (seen[start]) continue;
    const value = data[start];
    counts.set(value, (counts.get(value) ?? 0) + 1);
    const stack = [start];
    seen[start] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      const [x, y] = [i % size, Math.floor(i / size)];
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const [nx, ny] = [x + dx, y + dy];
          if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
          const j = ny * size + nx;
          if (!seen[j] && data[j] === value) {
            seen[j] = 1;
            stack.push(j);
          }
        }
      }
    }
  }
  return counts;
}

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
    const train = stats.splits.train!;
    const present = train.pixelFrequency.filter((f) => f > 0);
    expect(Math.max(...present) / Math.min(...present)).toBeGreaterThan(100);
    expect(train.pixelFrequency.filter((f) => f > 0 && f < 0.01).length).toBeGreaterThanOrEqual(3);
    for (const o of SYNTHETIC_OBJECTS.slice(0, 2)) {
      expect(train.onHomeContext[o]).toBeGreaterThan(0.75);
      expect(stats.splits['val-shifted']!.onHomeContext[o]).toBe(0);
    }
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    expect(ds.length).toBe(120);
    const measured = await computeClassFrequencies(ds);
    measured.fraction.forEach((f, c) => expect(f).toBeCloseTo(train.pixelFrequency[c], 10));
    expect(formatSyntheticStats(stats)).toMatch(/\| crab +\| object +\| sand/);
  });

  it('records per split the object instances it drew, as the masks show them, and its plan matches', async () => {
    const root = await mkdtemp(join(tmpdir(), 'synth-inst-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const small = { seed: 3, counts: { train: 60, val: 40, 'val-shifted': 40 } };
    const stats = await generateSynthetic({ root, ...small });
    expect(planSynthetic(small)).toEqual(Object.fromEntries(Object.entries(stats.splits).map(([s, v]) => [s, v!.instances])));
    for (const split of ['train', 'val', 'val-shifted'] as SyntheticSplit[]) {
      const counted = new Array<number>(SYNTHETIC_OBJECTS.length).fill(0);
      for (let i = 0; i < small.counts[split]; i++) {
        const mask = await readLabelPng(join(root, split, 'masks', `${split}-${String(i).padStart(5, '0')}.png`));
        for (const [value, n] of componentsPerValue(mask.data, mask.width)) if (value >= SYNTHETIC_CONTEXTS.length) counted[value - SYNTHETIC_CONTEXTS.length] += n;
      }
      expect(counted.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(counted).toEqual(SYNTHETIC_OBJECTS.map((o) => stats.splits[split]!.instances[o]));
    }
    expect(stats.options).toEqual({ version: 2, seed: 3, size: 64, counts: small.counts, bias: 0.9, objectScale: 1.5 });
  });

  it('plans at least 300 instances of every object class in val and val-shifted at the default options, and keeps the tail in train', () => {
    const plan = planSynthetic();
    for (const split of ['val', 'val-shifted'] as const) for (const o of SYNTHETIC_OBJECTS) expect(plan[split]![o]).toBeGreaterThanOrEqual(300);
    expect(plan.train!.car).toBeGreaterThan(3 * plan.train!.crab);
  });

  it('pretrain mode: every object class about equally often, each on every context about equally often, recorded in its options', async () => {
    const root = await mkdtemp(join(tmpdir(), 'synth-pre-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const stats = await generateSynthetic({ root, mode: 'pretrain', seed: 0, counts: { train: 400, val: 40 } });
    expect(Object.keys(stats.splits)).toEqual(['train', 'val']);
    expect(stats.options).toEqual({ version: 2, mode: 'pretrain', seed: 0, size: 64, counts: { train: 400, val: 40 }, bias: 0.9, objectScale: 1.5 });
    // At the default 2400 training images: 2040 with an object, about 660 instances per class.
    const instances = Object.values(planSynthetic({ mode: 'pretrain' }).train!);
    expect(Math.min(...instances) / Math.max(...instances)).toBeGreaterThan(0.8);
    expect(Math.min(...instances)).toBeGreaterThan(500);
    for (const o of SYNTHETIC_OBJECTS) expect(stats.splits.train!.onHomeContext[o]).toBeLessThan(0.5);
    const contexts = new Array<number>(SYNTHETIC_CONTEXTS.length).fill(0);
    const objectOnContext = SYNTHETIC_OBJECTS.map(() => new Array<number>(SYNTHETIC_CONTEXTS.length).fill(0));
    for (let i = 0; i < 2400; i++) {
      const layout = syntheticLayout(0, 'train', i, 64, 0.9, 1.5, 'pretrain');
      contexts[layout.context]++;
      if (layout.object >= 0) objectOnContext[layout.object][layout.context]++;
    }
    expect(Math.min(...contexts) / Math.max(...contexts)).toBeGreaterThan(0.85);
    // Each object's images spread over the contexts: every share within 0.25 +- 0.06 (the benchmark's train puts 0.9 on one).
    for (const row of objectOnContext) for (const n of row) expect(Math.abs(n / row.reduce((a, b) => a + b, 0) - 0.25)).toBeLessThan(0.06);
    // Other random streams than the benchmark's splits of the same seed.
    expect(syntheticLayout(0, 'train', 0, 64, 0.9, 1.5, 'pretrain')).not.toEqual(syntheticLayout(0, 'train', 0));
    await expect(ensureSynthetic({ root, seed: 0, counts: { train: 400, val: 40 } })).rejects.toThrow(/the synthetic benchmark there was generated with .*mode "pretrain"/);
  });

  it('says "no instance" in its table where a split drew none of an object, never NaN%', async () => {
    const root = await mkdtemp(join(tmpdir(), 'synth-none-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const stats = await generateSynthetic({ root, seed: 0, size: 16, counts: { train: 2, val: 1, 'val-shifted': 1 } });
    const absent = Object.values(stats.splits).flatMap((split) => SYNTHETIC_OBJECTS.filter((o) => split.instances[o] === 0));
    expect(absent.length).toBeGreaterThan(0);
    const table = formatSyntheticStats(stats);
    expect(table).not.toMatch(/NaN/);
    expect(table.match(/no instance/g)).toHaveLength(absent.length);
  });

  it('reuses a folder only when it was generated with the same options', async () => {
    const root = await mkdtemp(join(tmpdir(), 'synth-ensure-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const options = { root, seed: 1, size: 32, counts: { train: 4, val: 2, 'val-shifted': 2 } };
    expect((await ensureSynthetic(options)).generated).toBe(true);
    expect((await ensureSynthetic(options)).generated).toBe(false);
    await expect(ensureSynthetic({ ...options, size: 64 })).rejects.toThrow(/stats\.json: the synthetic benchmark there was generated with size 32; expected size 64\. Remove .* to have it written again/);
    await expect(ensureSynthetic({ ...options, counts: { ...options.counts, val: 3 } })).rejects.toThrow(/counts\.val 2; expected counts\.val 3/);
    // A folder from before the options were recorded is not taken for one with the wanted options.
    const stats = JSON.parse(await readFile(join(root, 'stats.json'), 'utf8'));
    delete stats.options;
    await writeFile(join(root, 'stats.json'), JSON.stringify(stats));
    await expect(ensureSynthetic(options)).rejects.toThrow(/stats\.json: records no generator options \(written by an older version of the generator\); expected .*"size":32.* Remove/);
  });
});
