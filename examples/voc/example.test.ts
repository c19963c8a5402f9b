import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { parseRunConfig, train } from '@dropclass/train';
import { vocPalette } from '@dropclass/datasets';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

const PYTHON = '/usr/bin/python3';
const hasTorchvision = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
if (!hasTorchvision) console.log(`examples/voc: ${PYTHON} has no torch/torchvision, so the fine-tuning config is not tried (apt-get install python3-torch python3-torchvision to try it)`);

// VOC 2012 val mixes landscape, portrait and short images; two of one size in a row are predicted together
const VOC_SIZES: [string, number, number][] = [
  ['2007_000032', 500, 375],
  ['2007_000039', 500, 375],
  ['2007_000033', 375, 500],
  ['2008_000004', 500, 333],
];

/** A tree in the VOC 2012 layout with these images (id, width, height), all in train and val. */
async function vocTree(images: [string, number, number][]): Promise<{ root: string; images: [string, number, number][] }> {
  const root = await mkdtemp(join(tmpdir(), 'example-voc-'));
  onTestFinished(() => rm(root, { recursive: true, force: true }));
  for (const [i, [id, width, height]] of images.entries()) {
    await writeImage(join(root, 'JPEGImages', `${id}.jpg`), width, height, (x, y) => [(x * 3) % 256, (y * 5) % 256, i * 60]);
    await writeLabel(join(root, 'SegmentationClass', `${id}.png`), width, height, (x, y) => (x === 20 ? 255 : (Math.floor(x / 50) + Math.floor(y / 50) + i) % 21), vocPalette());
  }
  await mkdir(join(root, 'ImageSets', 'Segmentation'), { recursive: true });
  await writeFile(join(root, 'ImageSets', 'Segmentation', 'train.txt'), `${images.map(([id]) => id).join('\n')}\n`);
  await writeFile(join(root, 'ImageSets', 'Segmentation', 'val.txt'), `${images.map(([id]) => id).join('\n')}\n`);
  return { root, images };
}

describe('examples/voc', () => {
  it('voc.json trains in quick mode on a VOC-layout tree with the real size mix, and evaluates every image at its own size', async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const { root, images } = await vocTree(VOC_SIZES);
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

  it.skipIf(!hasTorchvision)("finetune-torchvision.json loads torchvision's deeplabv3_resnet50 (random weights, torchvision's names and shapes) whole and trains", async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    // Small images: a ResNet-50 at output stride 8 evaluates whole images, and this is about loading, not sizes.
    const { root } = await vocTree([
      ['2007_000032', 64, 48],
      ['2007_000033', 48, 64],
    ]);
    const script = join(here, '../../packages/backbone-deeplab/python/torchvision_weights.py');
    const made = spawnSync(PYTHON, [script, root, 'deeplabv3_resnet50'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const raw = JSON.parse(await readFile(join(here, 'finetune-torchvision.json'), 'utf8'));
    Object.assign(raw, { crop: [32, 32], batchSize: 2, iterations: 1, evalEvery: 0, evalBatchSize: 1 });
    raw.dataset.root = root;
    raw.init.from = join(root, 'deeplabv3_resnet50.safetensors');
    const lines: string[] = [];
    const out = join(root, 'finetune');
    const result = await train(parseRunConfig(raw, join(here, 'finetune-torchvision.json')), { out, log: (l) => lines.push(l) });
    result.model.dispose();
    const record = JSON.parse(await readFile(join(out, 'init.json'), 'utf8'));
    // Everything but the new feature-selection layer comes from the file; the auxiliary head is ignored.
    expect(record.report.initialised.map((i: { part: string }) => i.part)).toEqual(Array(6).fill('selection'));
    expect(record.report.ignored.some((k: string) => k.startsWith('aux_classifier.'))).toBe(true);
    expect(lines.join('\n')).toMatch(/init: \d+ tensors loaded from .*deeplabv3_resnet50\.safetensors \(torchvision's DeepLabV3\): backbone \d+, classifier 2/);
    const losses = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => 'total' in l);
    expect(losses).toHaveLength(1);
    expect(Number.isFinite(losses[0].total)).toBe(true);
  }, 300_000);
});
