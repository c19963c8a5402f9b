import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { parseRunConfig, train } from '@dropclass/train';
import { describe, expect, it, onTestFinished } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

describe('examples/synthetic-longtail', () => {
  for (const name of ['synthetic-dropclass.json', 'synthetic-baseline.json']) {
    it(`${name} trains in quick mode: fewer steps, a smaller benchmark`, async () => {
      await initBackend({ backend: 'wasm', quiet: true });
      const raw = JSON.parse(await readFile(join(here, name), 'utf8'));
      const dir = await mkdtemp(join(tmpdir(), 'example-synthetic-'));
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      raw.dataset.root = join(dir, 'data');
      raw.dataset.generate = { seed: 0, size: 32, train: 16, val: 4, valShifted: 4 };
      raw.crop = [32, 32];
      raw.iterations = 2;
      const config = parseRunConfig(raw, join(here, name));
      const result = await train(config, { out: join(dir, 'run'), log: () => {} });
      expect(result.steps).toBe(2);
      expect(result.model.dropclass).toBe(name === 'synthetic-dropclass.json');
      result.model.dispose();
    });
  }
});
