import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { parseRunConfig, train } from '@dropclass/cli';
import { vocPalette } from '@dropclass/datasets';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

describe('examples/voc', () => {
  it('voc.json trains in quick mode on a VOC-layout tree with the real size mix, and evaluates every image at its own size', async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const root = await mkdtemp(join(tmpdir(), 'example-voc-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    // VOC 2012 val mixes landscape, portrait and short images; two of one size in a row are predicted together
    const images: [string, number, number][] = [
      ['2007_000032', 500, 375],
      ['2007_000039', 500, 375],
      ['2007_000033', 375, 500],
      ['2008_000004', 500, 333],
    ];
    for (const [i, [id, width, height]] of images.entries()) {
      await writeImage(join(root, 'JPEGImages', `${id}.jpg`), width, height, (x, y) => [(x * 3) % 256, (y * 5) % 256, i * 60]);
      await writeLabel(join(root, 'SegmentationClass', `${id}.png`), width, height, (x, y) => (x === 20 ? 255 : (Math.floor(x / 50) + Math.floor(y / 50) + i) % 21), vocPalette());
    }
    await mkdir(join(root, 'ImageSets', 'Segmentation'), { recursive: true });
    await writeFile(join(root, 'ImageSets', 'Segmentation', 'train.txt'), `${images.map(([id]) => id).join('\n')}\n`);
    await writeFile(join(root, 'ImageSets', 'Segmentation', 'val.txt'), `${images.map(([id]) => id).join('\n')}\n`);
    const raw = JSON.parse(await readFile(join(here, 'voc.json'), 'utf8'));
    Object.assign(raw, { crop: [32, 32], batchSize: 2, iterations: 2, evalEvery: 0 });
    raw.backbone.options.width = 0.125;
    raw.dataset.root = root;
    const before = tf.memory().numTensors;
    const out = join(root, 'run');
    const result = await train(parseRunConfig(raw, join(here, 'voc.json')), { out, log: () => {} });
    expect(result.model.numClasses).toBe(21);
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // every labelled pixel of every val image was counted once: whole images, no crop, no padding counted
    const evalFile = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8'));
    const counted = (evalFile.splits.val.counts as number[]).reduce((a, b) => a + b, 0);
    expect(counted).toBe(images.reduce((n, [, width, height]) => n + width * height - height, 0));
  });
});
