import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_CLASS_DROPPED, createBackbone, DropClassModel, inferClasses } from '@dropclass/core';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { IMAGENET_MEAN, IMAGENET_STD, createEvalStream, openDataset, vocPalette } from '@dropclass/datasets';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import { ConfusionMatrix } from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import './backbones.js';
import { evaluateDataset } from './evaluate.js';

/** VOC 2012 sizes: landscape, landscape again (predicted together), portrait, short. */
const IMAGES: [string, number, number][] = [
  ['2007_000032', 500, 375],
  ['2007_000039', 500, 375],
  ['2007_000033', 375, 500],
  ['2008_000004', 500, 333],
];

describe('evaluation of whole images of mixed sizes (VOC layout)', () => {
  let root: string;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    root = await mkdtemp(join(tmpdir(), 'dropclass-eval-voc-'));
    for (const [i, [id, width, height]] of IMAGES.entries()) {
      await writeImage(join(root, 'JPEGImages', `${id}.jpg`), width, height, (x, y) => [(x * 7) % 256, (y * 3) % 256, 40 * i]);
      await writeLabel(join(root, 'SegmentationClass', `${id}.png`), width, height, (x, y) => (y < 4 ? 255 : (Math.floor(x / 60) + i) % 21), vocPalette());
    }
    await mkdir(join(root, 'ImageSets', 'Segmentation'), { recursive: true });
    await writeFile(join(root, 'ImageSets', 'Segmentation', 'val.txt'), `${IMAGES.map(([id]) => id).join('\n')}\n`);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('counts every labelled pixel once, the same whether images are grouped by size or not, with no tensor left', async () => {
    const ds = await openDataset({ kind: 'voc', root, split: 'val' });
    const model = DropClassModel.create(createBackbone('unet', { base: 2, depth: 2 }, { seed: 0 }), { numClasses: 21, seed: 0 });
    const before = tf.memory().numTensors;
    const grouped = await evaluateDataset(model, ds, { mean: IMAGENET_MEAN, std: IMAGENET_STD, batchSize: 4 });
    const single = await evaluateDataset(model, ds, { mean: IMAGENET_MEAN, std: IMAGENET_STD, batchSize: 1 });
    expect(tf.memory().numTensors).toBe(before);
    const total = (m: ConfusionMatrix) => m.toJSON().counts.reduce((a, b) => a + b, 0);
    expect(total(grouped)).toBe(IMAGES.reduce((n, [, w, h]) => n + w * (h - 4), 0));
    expect(grouped.toJSON().counts).toEqual(single.toJSON().counts);

    // and the same as predicting each image by hand, padded to a multiple of 4 and cropped back
    const byHand = new ConfusionMatrix(21);
    for await (const batch of createEvalStream(ds, { batchSize: 1, mean: IMAGENET_MEAN, std: IMAGENET_STD })) {
      const [, h, w] = batch.images.shape;
      const classes = tf.tidy(() => {
        const padded = tf.pad(batch.images, [[0, 0], [0, Math.ceil(h / 4) * 4 - h], [0, Math.ceil(w / 4) * 4 - w], [0, 0]]);
        return tf.slice(model.predict(padded, NO_CLASS_DROPPED), [0, 0, 0], [1, h, w]);
      });
      byHand.update(classes.dataSync() as Int32Array, batch.labels.dataSync() as Int32Array);
      tf.dispose([classes, batch.images, batch.labels]);
    }
    expect(grouped.toJSON().counts).toEqual(byHand.toJSON().counts);
    model.dispose();
  });

  it('evaluates window by window, and refuses a window the backbone cannot take before predicting', async () => {
    const ds = await openDataset({ kind: 'voc', root, split: 'val' });
    const model = DropClassModel.create(createBackbone('unet', { base: 2, depth: 2 }, { seed: 0 }), { numClasses: 21, seed: 0 });
    const before = tf.memory().numTensors;
    const windowed = await evaluateDataset(model, ds, { mean: IMAGENET_MEAN, std: IMAGENET_STD, inference: { window: [256, 256], stride: [192, 256] } });
    expect(tf.memory().numTensors).toBe(before);
    expect(windowed.toJSON().counts.reduce((a, b) => a + b, 0)).toBe(IMAGES.reduce((n, [, w, h]) => n + w * (h - 4), 0));
    // the windowed prediction of the first image, predicted by the inference module directly
    const first = await createEvalStream(ds, { batchSize: 1, mean: IMAGENET_MEAN, std: IMAGENET_STD }).next();
    const direct = inferClasses(model, first.value!.images, { window: [256, 256], stride: [192, 256] });
    expect(direct.shape).toEqual([1, 375, 500]);
    tf.dispose([direct, first.value!.images, first.value!.labels]);
    await expect(evaluateDataset(model, ds, { mean: IMAGENET_MEAN, std: IMAGENET_STD, inference: { window: [250, 256] } })).rejects.toThrow(
      /window 250x256 cannot be taken by the unet backbone: sides must be multiples of 4 and at least 4; use 252x256/,
    );
    model.dispose();
  });
});
