import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Batch, createBatchStream, createEvalStream, openDataset } from './index.js';
import { writeImage, writeLabel } from './testing.js';

async function collect(stream: AsyncGenerator<Batch>, limit: number) {
  const out: { images: number[]; labels: number[]; shape: number[]; ids: string[]; dtype: string }[] = [];
  for await (const b of stream) {
    out.push({ images: Array.from(b.images.dataSync()), labels: Array.from(b.labels.dataSync()), shape: b.images.shape, ids: b.ids, dtype: b.labels.dtype });
    tf.dispose([b.images, b.labels]);
    if (out.length >= limit) break;
  }
  return out;
}

describe('batch pipeline', () => {
  let root: string;
  afterAll(() => rm(root, { recursive: true, force: true }));
  beforeAll(async () => {
    await tf.setBackend('cpu');
    root = await mkdtemp(join(tmpdir(), 'dropclass-pipeline-'));
    await writeFile(join(root, 'classes.json'), JSON.stringify(['left', 'right']));
    for (let i = 0; i < 5; i++) {
      // label 0 on the left half, 1 on the right; the red channel tells the column
      await writeImage(join(root, 'train', 'images', `s${i}.png`), 8, 6, (x) => [x * 30, i * 10, 0]);
      await writeLabel(join(root, 'train', 'masks', `s${i}.png`), 8, 6, (x) => (x < 4 ? 0 : 1));
    }
  });

  it('makes normalised float batches [B,H,W,3] and int32 labels [B,H,W]', async () => {
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const [batch] = await collect(createBatchStream(ds, { batchSize: 2, crop: [4, 4], mean: [0, 0, 0], std: [1, 1, 1], seed: 1 }), 1);
    expect(batch.shape).toEqual([2, 4, 4, 3]);
    expect(batch.dtype).toBe('int32');
    expect(batch.labels).toHaveLength(32);
  });

  it('is deterministic for a seed, shuffles differently for another, and resumes at any batch', async () => {
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const options = { batchSize: 2, crop: [4, 4] as [number, number], scale: [0.8, 1.5] as [number, number], flip: true, seed: 3 };
    const a = await collect(createBatchStream(ds, options), 5);
    const b = await collect(createBatchStream(ds, options), 5);
    expect(b).toEqual(a);
    const other = await collect(createBatchStream(ds, { ...options, seed: 4 }), 5);
    expect(other.map((x) => x.ids)).not.toEqual(a.map((x) => x.ids));
    const resumed = await collect(createBatchStream(ds, { ...options, startBatch: 3 }), 2);
    expect(resumed).toEqual(a.slice(3, 5));
  });

  it('rescaling keeps labels on their pixels', async () => {
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const batches = await collect(createBatchStream(ds, { batchSize: 1, scale: [0.6, 1.9], crop: [6, 8], mean: [0, 0, 0], std: [1, 1, 1], seed: 5 }), 8);
    let checked = 0;
    for (const b of batches) {
      for (let p = 0; p < b.labels.length; p++) {
        const red = b.images[3 * p];
        const label = b.labels[p];
        // red = 30 x column: columns 0-3 (label 0) are at most 90, columns 4-7 (label 1) at least 120
        if (label === 255) continue;
        if (red <= 60) expect(label).toBe(0);
        if (red >= 150) expect(label).toBe(1);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('pads with the ignore index where the crop is larger than the image', async () => {
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const [batch] = await collect(createBatchStream(ds, { batchSize: 1, crop: [8, 10], seed: 0, shuffle: false }), 1);
    const labels = batch.labels;
    for (let y = 0; y < 8; y++) for (let x = 0; x < 10; x++) expect(labels[y * 10 + x] === 255).toBe(y >= 6 || x >= 8);
  });

  it('flips image and label together', async () => {
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const batches = await collect(createBatchStream(ds, { batchSize: 1, flip: true, mean: [0, 0, 0], std: [1, 1, 1], seed: 2 }), 10);
    let flipped = 0;
    for (const b of batches) {
      const red0 = b.images[0];
      const label0 = b.labels[0];
      // column 0 has red 0 and label 0 unflipped; flipped it shows column 7: red 210, label 1
      expect([red0, label0]).toEqual(red0 === 0 ? [0, 0] : [210, 1]);
      if (red0 !== 0) flipped++;
    }
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(10);
  });

  it('evaluation batches keep every image once, in order, padded to a multiple', async () => {
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const batches = await collect(createEvalStream(ds, { batchSize: 2, padToMultiple: 4 }), 10);
    expect(batches.map((b) => b.ids)).toEqual([['s0', 's1'], ['s2', 's3'], ['s4']]);
    expect(batches[0].shape).toEqual([2, 8, 8, 3]);
  });
});
