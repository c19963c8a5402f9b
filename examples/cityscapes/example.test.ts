import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/core';
import { parseRunConfig, train } from '@dropclass/cli';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import { describe, expect, it, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

describe('examples/cityscapes', () => {
  it('run.json trains in quick mode on a tiny tree in the Cityscapes layout', async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const root = await mkdtemp(join(tmpdir(), 'example-cityscapes-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const ids = [7, 8, 11, 26, 24, 0];
    for (const split of ['train', 'val']) {
      for (const [i, city] of ['aachen', 'bochum'].entries()) {
        const base = `${city}_00000${i}_000019`;
        await writeImage(join(root, 'leftImg8bit', split, city, `${base}_leftImg8bit.png`), 64, 32, (x, y) => [x * 4, y * 8, i * 100]);
        await writeLabel(join(root, 'gtFine', split, city, `${base}_gtFine_labelIds.png`), 64, 32, (x, y) => ids[(x + y + i) % ids.length]);
      }
    }
    const raw = JSON.parse(await readFile(join(here, 'run.json'), 'utf8'));
    Object.assign(raw, { crop: [32, 32], batchSize: 2, iterations: 2, evalEvery: 0 });
    raw.backbone.options.width = 0.125;
    raw.dataset.root = root;
    const result = await train(parseRunConfig(raw, join(here, 'run.json')), { out: join(root, 'run'), log: () => {} });
    expect(result.model.numClasses).toBe(19);
    expect(result.steps).toBe(2);
    result.model.dispose();
  });
});
