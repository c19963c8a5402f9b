import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/core';
import { parseRunConfig, train } from '@dropclass/cli';
import { vocPalette } from '@dropclass/datasets';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import { describe, expect, it, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

describe('examples/voc', () => {
  it('run.json trains in quick mode on a tiny tree in the VOC layout', async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const root = await mkdtemp(join(tmpdir(), 'example-voc-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const ids = ['2007_000032', '2007_000033', '2007_000039'];
    for (const [i, id] of ids.entries()) {
      await writeImage(join(root, 'JPEGImages', `${id}.jpg`), 40, 36, (x, y) => [x * 6, y * 6, i * 80]);
      await writeLabel(join(root, 'SegmentationClass', `${id}.png`), 40, 36, (x, y) => (x === 20 ? 255 : (x + y + i) % 21), vocPalette());
    }
    await mkdir(join(root, 'ImageSets', 'Segmentation'), { recursive: true });
    await writeFile(join(root, 'ImageSets', 'Segmentation', 'train.txt'), `${ids.join('\n')}\n`);
    await writeFile(join(root, 'ImageSets', 'Segmentation', 'val.txt'), `${ids[0]}\n`);
    const raw = JSON.parse(await readFile(join(here, 'run.json'), 'utf8'));
    Object.assign(raw, { crop: [32, 32], batchSize: 2, iterations: 2, evalEvery: 0 });
    raw.backbone.options.width = 0.125;
    raw.dataset.root = root;
    const result = await train(parseRunConfig(raw, join(here, 'run.json')), { out: join(root, 'run'), log: () => {} });
    expect(result.model.numClasses).toBe(21);
    result.model.dispose();
  });
});
