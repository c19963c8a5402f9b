import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { loadRunConfig, train } from '@dropclass/train';
import { describe, expect, it, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

describe('examples/synthetic-longtail', () => {
  for (const name of ['synthetic-dropclass.json', 'synthetic-baseline.json']) {
    it(`${name} trains in quick mode: fewer steps, a smaller benchmark`, async () => {
      await initBackend({ backend: 'wasm', quiet: true });
      const dir = await mkdtemp(join(tmpdir(), 'example-synthetic-'));
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      const config = await loadRunConfig(join(here, name), [
        `dataset.root=${JSON.stringify(join(dir, 'data'))}`,
        'dataset.generate={"seed":0,"size":32,"train":16,"val":4,"valShifted":4}',
        'crop=[32,32]',
        'iterations=2',
      ]);
      const result = await train(config, { out: join(dir, 'run'), log: () => {} });
      expect(result.steps).toBe(2);
      expect(result.model.dropclass).toBe(name === 'synthetic-dropclass.json');
      result.model.dispose();
    });
  }
});
