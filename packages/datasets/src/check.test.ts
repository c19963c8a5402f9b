import { mkdir, mkdtemp, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { encode as encodePng } from 'fast-png';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DataCheckError, checkDataset, createBatchStream, openDataset } from './index.js';
import { writeImage, writeLabel } from './testing.js';

const temp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dropclass-check-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
};

/** A folder dataset of 8 classes: `count` good 8x6 samples in each split. */
async function tree(splits: Record<string, number>) {
  const root = await temp();
  await writeFile(join(root, 'classes.json'), JSON.stringify(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']));
  for (const [split, count] of Object.entries(splits)) {
    await mkdir(join(root, split, 'images'), { recursive: true });
    await mkdir(join(root, split, 'masks'), { recursive: true });
    for (let i = 0; i < count; i++) {
      const name = `${split}-${String(i).padStart(5, '0')}.png`;
      await writeImage(join(root, split, 'images', name), 8, 6, (x, y) => [x * 20, y * 30, i]);
      await writeLabel(join(root, split, 'masks', name), 8, 6, (x) => x % 8);
    }
  }
  return root;
}

const caught = async (promise: Promise<unknown>): Promise<DataCheckError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DataCheckError) return error;
    throw error;
  }
  throw new Error('the check passed');
};

describe('checking the data before a run', () => {
  it('lists every bad file of every split at once: sizes, truncated files, label values, colour labels, unmatched files', async () => {
    const root = await tree({ train: 10, val: 4 });
    const mask = (split: string, i: number) => join(root, split, 'masks', `${split}-${String(i).padStart(5, '0')}.png`);
    const image = (split: string, i: number) => join(root, split, 'images', `${split}-${String(i).padStart(5, '0')}.png`);
    await writeLabel(mask('train', 1), 7, 6, () => 0); // the wrong size
    await truncate(image('train', 3), 60); // a truncated image
    await truncate(mask('train', 4), 40); // a truncated label
    await writeLabel(mask('train', 7), 8, 6, (x, y) => (x === 0 && y === 0 ? 77 : 1)); // value 77 of 8 classes
    await writeFile(mask('val', 2), encodePng({ width: 8, height: 6, data: new Uint8Array(8 * 6 * 3), channels: 3, depth: 8 })); // an RGB label
    await writeImage(join(root, 'val', 'images', 'lonely.png'), 8, 6, () => [1, 2, 3]); // no label

    const error = await caught(checkDataset({ kind: 'folder', root, splits: ['train', 'val'] }));
    const listed = error.problems.map((p) => `${p.split} ${p.id}`);
    expect(listed).toEqual(['train train-00001', 'train train-00003', 'train train-00004', 'train train-00007', 'val lonely', 'val val-00002']);
    expect(error.message).toMatch(/6 problems in the data, found before training/);
    expect(error.message).toMatch(/train-00001\.png: is 7x6; expected the size of its image .*train-00001\.png \(8x6\)/);
    expect(error.message).toMatch(/images[/\\]train-00003\.png: cannot be decoded/);
    expect(error.message).toMatch(/masks[/\\]train-00004\.png: cannot be decoded as PNG/);
    expect(error.message).toMatch(/train-00007\.png: has label value 77 at pixel \(0, 0\); expected a class id in 0\.\.7 or 255/);
    expect(error.message).toMatch(/val-00002\.png: is a 8-bit 3-channel PNG; expected an 8-bit single-channel or palette PNG/);
    expect(error.message).toMatch(/lonely\.png has no label/);
    expect(error.message).toMatch(/set "skipBad": true under "dataset" in the run config/);
  });

  it('refuses a missing split, an empty split, classes that differ between splits and a numClasses the names do not have', async () => {
    const root = await tree({ train: 3, empty: 0 });
    await writeFile(join(root, 'classes.json'), JSON.stringify(['a', 'b', 'c']));
    // the labels of train go up to 7: with 3 classes, those are bad too
    const error = await caught(checkDataset({ kind: 'folder', root, splits: ['train', 'val', 'empty'], numClasses: 8 }));
    const splitLevel = error.problems.filter((p) => p.id === undefined).map((p) => `${p.split}: ${p.message}`);
    expect(splitLevel).toEqual([
      expect.stringMatching(/^train: numClasses is 8 but the folder dataset has 3 class names \(a, b, c\)/),
      expect.stringMatching(/^val: does not exist or is not a directory; expected the images of split "val"/),
      'empty: holds no samples',
    ]);
    expect(error.problems.filter((p) => p.id !== undefined)).toHaveLength(3);
  });

  it('caches each verdict by path, size and mtime: a second check decodes nothing, a changed file is checked again', async () => {
    const root = await tree({ train: 12, val: 5 });
    const cacheFile = join(await temp(), 'cache', 'check.json');
    const first = await checkDataset({ kind: 'folder', root, splits: ['train', 'val'], cacheFile });
    expect([first.samples, first.decoded, first.cached]).toEqual([17, 17, 0]);
    const second = await checkDataset({ kind: 'folder', root, splits: ['train', 'val'], cacheFile });
    expect([second.samples, second.decoded, second.cached]).toEqual([17, 0, 17]);
    // A label rewritten with a bad value: its size is the same, its mtime is not.
    const mask = join(root, 'val', 'masks', 'val-00003.png');
    await writeLabel(mask, 8, 6, () => 9);
    await utimes(mask, new Date(), new Date(Date.now() + 5000));
    const error = await caught(checkDataset({ kind: 'folder', root, splits: ['train', 'val'], cacheFile }));
    expect(error.problems.map((p) => p.id)).toEqual(['val-00003']);
    // The bad verdict is cached too, and still reported.
    const again = await caught(checkDataset({ kind: 'folder', root, splits: ['train', 'val'], cacheFile }));
    expect(again.message).toBe(error.message);
    expect(JSON.parse(await readFile(cacheFile, 'utf8')).format).toBe('dropclass-data-check/1');
  });

  it('with skipBad, leaves bad samples out of the datasets and lists them; a split with no good sample still fails', async () => {
    const root = await tree({ train: 6, val: 2 });
    await writeLabel(join(root, 'train', 'masks', 'train-00002.png'), 8, 6, () => 200);
    const result = await checkDataset({ kind: 'folder', root, splits: ['train', 'val'], skipBad: true, batchSize: 4 });
    expect(result.skipped.map((s) => s.id)).toEqual(['train-00002']);
    expect(result.datasets.train.ids).toEqual(['train-00000', 'train-00001', 'train-00003', 'train-00004', 'train-00005']);
    expect(result.datasets.train.skipped.map((s) => s.id)).toEqual(['train-00002']);
    expect(result.datasets.val.length).toBe(2);
    const tooFew = await caught(checkDataset({ kind: 'folder', root, splits: ['train', 'val'], skipBad: true, batchSize: 6 }));
    expect(tooFew.message).toMatch(/train: holds 5 good samples, fewer than one batch of 6/);
    for (const i of [0, 1]) await writeLabel(join(root, 'val', 'masks', `val-0000${i}.png`), 8, 6, () => 100);
    const noneLeft = await caught(checkDataset({ kind: 'folder', root, splits: ['train', 'val'], skipBad: true }));
    expect(noneLeft.message).toMatch(/val: holds no good sample \(all 2 are bad\)/);
    // A sample that goes bad after the check is an error when read, not silently replaced.
    await writeLabel(join(root, 'train', 'masks', 'train-00003.png'), 8, 6, () => 201);
    await expect(result.datasets.train.get(2)).rejects.toThrow(/train-00003\.png: has label value 201/);
  });
});

describe('a bad file met during a run', () => {
  it('rejects where the batch is awaited, and leaves no unhandled rejection behind from the batches read ahead', async () => {
    const root = await tree({ train: 8 });
    for (const i of [2, 3, 4, 5, 6, 7]) await truncate(join(root, 'train', 'images', `train-0000${i}.png`), 50);
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    onTestFinished(() => {
      process.off('unhandledRejection', record);
    });
    await tf.setBackend('cpu');
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const batch of createBatchStream(ds, { batchSize: 2, shuffle: false, prefetch: 3 })) {
          seen.push(...batch.ids);
          tf.dispose([batch.images, batch.labels]);
        }
      })(),
    ).rejects.toThrow(/train-0000[23]\.png: cannot be decoded/);
    expect(seen).toEqual(['train-00000', 'train-00001']);
    // the batches read ahead failed too; give their rejections a turn to surface
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
  });
});
