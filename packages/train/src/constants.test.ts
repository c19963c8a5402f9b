import { IGNORE_INDEX as coreIgnore } from '@dropclass/core';
import { IGNORE_INDEX as datasetsIgnore, IMAGENET_MEAN, IMAGENET_STD } from '@dropclass/datasets';
import { IGNORE_INDEX as metricsIgnore } from '@dropclass/metrics';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from './config.js';

describe('constants shared across the packages', () => {
  it('a run config normalises with the datasets package ImageNet statistics by default', () => {
    const config = parseRunConfig({
      backbone: { kind: 'unet', options: { base: 2, depth: 1 } },
      dataset: { kind: 'folder', root: tmpdir() },
      crop: [16, 16],
      batchSize: 2,
      iterations: 2,
    });
    expect(config.mean).toEqual(IMAGENET_MEAN);
    expect(config.std).toEqual(IMAGENET_STD);
    expect(config.mean).not.toBe(IMAGENET_MEAN);
  });

  it('every package ignores the same label', () => {
    expect(datasetsIgnore).toBe(coreIgnore);
    expect(metricsIgnore).toBe(coreIgnore);
  });
});
