import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { main } from '@dropclass/cli';
import { parseRunConfig, train } from '@dropclass/train';
import { readImage } from '@dropclass/datasets';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, onTestFinished, vi } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const [WIDTH, HEIGHT] = [2048, 1024];

describe('examples/cityscapes', () => {
  it('cityscapes.json trains in quick mode on a Cityscapes-layout tree of 2048x1024 images and evaluates them with sliding windows', async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const root = await mkdtemp(join(tmpdir(), 'example-cityscapes-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    // label ids: road, sidewalk, building, car, person, unlabelled (ignored)
    const ids = [7, 8, 11, 26, 24, 0];
    const labelId = (x: number, y: number) => ids[(Math.floor(x / 128) + Math.floor(y / 128)) % ids.length];
    for (const split of ['train', 'val']) {
      const base = `aachen_000000_000019`;
      await writeImage(join(root, 'leftImg8bit', split, 'aachen', `${base}_leftImg8bit.png`), WIDTH, HEIGHT, (x, y) => [(x >> 3) % 256, (y >> 2) % 256, split === 'val' ? 90 : 30]);
      await writeLabel(join(root, 'gtFine', split, 'aachen', `${base}_gtFine_labelIds.png`), WIDTH, HEIGHT, labelId);
    }
    const raw = JSON.parse(await readFile(join(here, 'cityscapes.json'), 'utf8'));
    expect(raw.inference.window).toEqual([512, 1024]);
    // the cityscapes.json window, a coarser stride than its own (6 overlapping windows instead of 9) to keep the test short
    Object.assign(raw, { crop: [32, 32], batchSize: 1, iterations: 1, evalEvery: 0 });
    raw.inference.stride = [512, 512];
    raw.backbone.options.width = 0.125;
    raw.dataset.root = root;
    const out = join(root, 'run');
    const before = tf.memory().numTensors;
    const result = await train(parseRunConfig(raw, join(here, 'cityscapes.json')), { out, log: () => {} });
    expect(result.model.numClasses).toBe(19);
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const evalFile = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8'));
    const counted = (evalFile.splits.val.counts as number[]).reduce((a, b) => a + b, 0);
    let labelled = 0;
    for (let y = 0; y < HEIGHT; y++) for (let x = 0; x < WIDTH; x++) if (labelId(x, y) !== 0) labelled++;
    expect(counted).toBe(labelled);

    // predict takes the same options; bad ones are refused before any file is written
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    onTestFinished(() => stderr.mockRestore());
    const image = join(root, 'leftImg8bit', 'val', 'aachen', 'aachen_000000_000019_leftImg8bit.png');
    expect(await main(['predict', '--model', out, '--input', image, '--out', join(root, 'bad'), '--window', '500x1024'])).toBe(1);
    expect(stderr.mock.calls.map(([s]) => String(s)).join('')).toMatch(/window 500x1024 cannot be taken by the deeplabv3-resnet18 backbone: sides must be multiples of 16 and at least 32; use 496x1024/);
    expect(await main(['predict', '--model', out, '--input', image, '--out', join(root, 'bad'), '--stride', '10x0'])).toBe(1);
    expect(stderr.mock.calls.map(([s]) => String(s)).join('')).toMatch(/--stride must be HEIGHTxWIDTH in positive whole pixels/);
    expect(await main(['predict', '--model', out, '--input', image, '--out', join(root, 'masks'), '--window', '1024x1024', '--stride', '1024x1024'])).toBe(0);
    const mask = await readImage(join(root, 'masks', 'aachen_000000_000019_leftImg8bit_mask.png'));
    expect([mask.width, mask.height]).toEqual([WIDTH, HEIGHT]);
    expect((await readdir(root)).includes('bad')).toBe(false);
  });
});
