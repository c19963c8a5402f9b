import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CITYSCAPES_TRAIN_IDS, DatasetError, openDataset, vocPalette } from './index.js';
import { writeImage, writeLabel } from './testing.js';

/** A fresh folder for one test, removed when the test ends. */
const temp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dropclass-datasets-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
};

describe('folder datasets', () => {
  async function folderTree() {
    const root = await temp();
    await writeFile(join(root, 'classes.json'), JSON.stringify(['background', 'thing', 'other']));
    for (const name of ['a', 'b']) {
      await writeImage(join(root, 'train', 'images', `${name}.png`), 6, 4, (x) => [x * 40, 0, 0]);
      await writeLabel(join(root, 'train', 'masks', `${name}.png`), 6, 4, (x) => (x === 0 ? 255 : x % 3));
    }
    return root;
  }

  it('pairs images and masks by stem and returns bytes, sizes and train ids', async () => {
    const root = await folderTree();
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    expect(ds.length).toBe(2);
    expect(ds.classNames).toEqual(['background', 'thing', 'other']);
    const sample = await ds.get(1);
    expect(sample.id).toBe('b');
    expect(sample.image).toMatchObject({ width: 6, height: 4, channels: 3 });
    expect(sample.image.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(sample.image.data.subarray(0, 6))).toEqual([0, 0, 0, 40, 0, 0]);
    expect(Array.from(sample.label.data.subarray(0, 6))).toEqual([255, 1, 2, 0, 1, 2]);
  });

  it('refuses a missing root or split, naming the path', async () => {
    const root = await folderTree();
    await expect(openDataset({ kind: 'folder', root: join(root, 'nope'), split: 'train' })).rejects.toThrow(/nope: does not exist/);
    await expect(openDataset({ kind: 'folder', root, split: 'val' })).rejects.toThrow(/val[/\\]images: does not exist .*Check the split name "val"/);
  });

  it('refuses an image without a mask and a mask without an image, or skips them with skipBad', async () => {
    const root = await folderTree();
    await writeImage(join(root, 'train', 'images', 'lonely.png'), 6, 4, () => [1, 2, 3]);
    await expect(openDataset({ kind: 'folder', root, split: 'train' })).rejects.toThrow(/lonely\.png: has no label in .*masks/);
    const ds = await openDataset({ kind: 'folder', root, split: 'train', skipBad: true });
    expect(ds.length).toBe(2);
    expect(ds.skipped.map((s) => s.id)).toEqual(['lonely']);
    await writeLabel(join(root, 'train', 'masks', 'orphan.png'), 6, 4, () => 0);
    await expect(openDataset({ kind: 'folder', root, split: 'train' })).rejects.toThrow(/has no label|has no image/);
  });

  it('refuses label values outside the classes, different sizes and corrupt files, with the file and the value', async () => {
    const root = await folderTree();
    await writeLabel(join(root, 'train', 'masks', 'a.png'), 6, 4, (x, y) => (x === 2 && y === 1 ? 7 : 0));
    const ds = await openDataset({ kind: 'folder', root, split: 'train' });
    await expect(ds.get(0)).rejects.toThrow(/a\.png: has label value 7 at pixel \(2, 1\); expected a class id in 0\.\.2 or 255/);
    await writeLabel(join(root, 'train', 'masks', 'a.png'), 5, 4, () => 0);
    await expect(ds.get(0)).rejects.toThrow(/a\.png: is 5x4; expected the size of its image .*a\.png \(6x4\)/);
    await writeFile(join(root, 'train', 'images', 'b.png'), 'not a png');
    const error = await ds.get(1).catch((e) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect(error.message).toMatch(/b\.png: cannot be decoded/);
    const skipping = await openDataset({ kind: 'folder', root, split: 'train', skipBad: true });
    await expect(skipping.get(1)).rejects.toThrow(/every sample .* is bad/);
    expect(skipping.skipped.map((s) => s.id)).toEqual(['b', 'a']);
  });

  it('refuses a missing or malformed classes.json', async () => {
    const root = await folderTree();
    await writeFile(join(root, 'classes.json'), '{"names": ["only one"]}');
    await expect(openDataset({ kind: 'folder', root, split: 'train' })).rejects.toThrow(/classes\.json: holds .*expected at least two class names/);
  });
});

describe('Cityscapes', () => {
  it('maps label ids to the 19 train ids with the official table and pairs files per city', async () => {
    const root = await temp();
    const ids = [7, 26, 0, 33, 255, 4];
    for (const city of ['aachen', 'bremen']) {
      const base = `${city}_000000_000019`;
      await writeImage(join(root, 'leftImg8bit', 'train', city, `${base}_leftImg8bit.png`), 6, 1, () => [10, 20, 30]);
      await writeLabel(join(root, 'gtFine', 'train', city, `${base}_gtFine_labelIds.png`), 6, 1, (x) => ids[x]);
    }
    const ds = await openDataset({ kind: 'cityscapes', root, split: 'train' });
    expect(ds.length).toBe(2);
    expect(ds.classNames).toHaveLength(19);
    expect(ds.classNames[13]).toBe('car');
    expect(ds.palette[0]).toEqual([128, 64, 128]);
    const sample = await ds.get(0);
    expect(sample.id).toBe('aachen/aachen_000000_000019');
    expect(Array.from(sample.label.data)).toEqual([0, 13, 255, 18, 255, 255]);
    expect(CITYSCAPES_TRAIN_IDS.filter((v) => v !== 255)).toHaveLength(19);
  });
});

describe('PASCAL VOC', () => {
  it('reads palette-index masks (255 = boundary ignored), JPEG images and the split list', async () => {
    const root = await temp();
    const palette = vocPalette();
    expect(palette[1]).toEqual([128, 0, 0]);
    expect(palette[15]).toEqual([192, 128, 128]);
    await writeImage(join(root, 'JPEGImages', '2007_000032.jpg'), 4, 2, () => [200, 100, 50]);
    await writeLabel(join(root, 'SegmentationClass', '2007_000032.png'), 4, 2, (x, y) => [0, 1, 15, 255][x] * (y === 0 ? 1 : 0), palette);
    await writeImage(join(root, 'JPEGImages', '2007_000033.jpg'), 4, 2, () => [0, 0, 0]);
    await writeLabel(join(root, 'SegmentationClassAug', '2007_000032.png'), 4, 2, () => 20);
    const sets = join(root, 'ImageSets', 'Segmentation');
    await mkdir(sets, { recursive: true });
    await writeFile(join(sets, 'train.txt'), '2007_000032\n');
    await writeFile(join(sets, 'val.txt'), '2007_000032\n2007_000033\n');
    const ds = await openDataset({ kind: 'voc', root, split: 'train' });
    expect(ds.classNames).toHaveLength(21);
    const sample = await ds.get(0);
    expect(Array.from(sample.label.data)).toEqual([0, 1, 15, 255, 0, 0, 0, 0]);
    expect(sample.image.channels).toBe(3);
    const aug = await openDataset({ kind: 'voc', root, split: 'train', augmented: true });
    expect(Array.from((await aug.get(0)).label.data)).toEqual(new Array(8).fill(20));
    await expect(openDataset({ kind: 'voc', root, split: 'val' })).rejects.toThrow(/2007_000033\.png: is missing/);
    await expect(openDataset({ kind: 'voc', root, split: 'test' })).rejects.toThrow(/test\.txt: is missing/);
  });
});
