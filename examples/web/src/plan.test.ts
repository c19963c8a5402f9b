import { describe, expect, it } from 'vitest';
import { SINGLE_PASS_LIMIT, axisTiles, formatShare, paddedSize, planInference, resizeNearest } from './plan.js';

const unet = { sizeMultiple: 8, minSize: 8 };

describe('planInference', () => {
  it('predicts an image within the limit in one pass, padded to the size rule', () => {
    expect(planInference(56, 40, unet, { mode: 'downscale' })).toEqual({ kind: 'whole', width: 56, height: 40, inputWidth: 56, inputHeight: 40 });
    expect(planInference(1000, 1001, unet, { mode: 'window' })).toEqual({ kind: 'whole', width: 1000, height: 1001, inputWidth: 1000, inputHeight: 1008 });
    expect(planInference(3, 2, { sizeMultiple: 16, minSize: 32 }, { mode: 'downscale' })).toMatchObject({ inputWidth: 32, inputHeight: 32 });
  });

  it('downscales a 4000x3000 image, aspect kept, until its padded input is within the limit', () => {
    const plan = planInference(4000, 3000, unet, { mode: 'downscale' });
    if (plan.kind !== 'downscale') throw new Error(`expected downscale, got ${plan.kind}`);
    expect(plan.inputWidth * plan.inputHeight).toBeLessThanOrEqual(SINGLE_PASS_LIMIT);
    expect(plan.inputWidth % 8).toBe(0);
    expect(plan.inputHeight % 8).toBe(0);
    expect(plan.scaledWidth / plan.scaledHeight).toBeCloseTo(4000 / 3000, 2);
    // Not needlessly small: within 3% of the limit's side.
    expect(plan.inputWidth * plan.inputHeight).toBeGreaterThan(0.94 * SINGLE_PASS_LIMIT);
  });

  it('tiles a large image so that every pixel is kept exactly once, at least the margin from inner window edges', () => {
    for (const [width, height, window, margin] of [
      [4000, 3000, 512, 64],
      [401, 299, 192, 64],
      [1030, 17, 512, 64],
    ]) {
      const plan = planInference(width, height, unet, { mode: 'window', limit: 1000, window, margin });
      if (plan.kind !== 'window') throw new Error(`expected window, got ${plan.kind}`);
      const covered = new Uint8Array(width * height);
      for (const tile of plan.tiles) {
        const { x0, x1, y0, y1 } = tile.keep;
        expect(tile.x % 8).toBe(0);
        expect(tile.y % 8).toBe(0);
        // The window lies within the padded image, as the one-pass input does.
        expect(tile.x + tile.inputWidth).toBeLessThanOrEqual(paddedSize(width, unet));
        expect(tile.y + tile.inputHeight).toBeLessThanOrEqual(paddedSize(height, unet));
        expect(x0).toBeGreaterThanOrEqual(tile.x === 0 ? 0 : tile.x + margin);
        expect(y0).toBeGreaterThanOrEqual(tile.y === 0 ? 0 : tile.y + margin);
        if (x1 < width) expect(x1).toBeLessThanOrEqual(tile.x + tile.inputWidth - margin);
        if (y1 < height) expect(y1).toBeLessThanOrEqual(tile.y + tile.inputHeight - margin);
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) covered[y * width + x]++;
      }
      expect(covered.every((n) => n === 1), `${width}x${height}: every pixel kept once`).toBe(true);
    }
  });

  it('ends the last window where the padded image ends', () => {
    expect(axisTiles(401, 192, 64, unet).map((t) => t.start)).toEqual([0, 64, 128, 192, 216]);
    expect(axisTiles(100, 192, 64, unet)).toEqual([{ start: 0, length: 104, keep0: 0, keep1: 100 }]);
  });

  it('refuses a window that keeps nothing, saying what would work', () => {
    expect(() => planInference(2000, 2000, unet, { mode: 'window', window: 128, margin: 64 })).toThrow(/a window of 128 pixels keeps nothing .* at least 136/);
  });
});

describe('resizeNearest', () => {
  it('takes each pixel from the source pixel under its centre', () => {
    const from = Uint16Array.from([1, 2, 3, 4]); // 2x2
    expect(Array.from(resizeNearest(from, 2, 2, 4, 2))).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    // One row from two: its centre (0.5 of 1) falls at 1.0 of 2, in the second row.
    expect(Array.from(resizeNearest(from, 2, 2, 3, 1))).toEqual([3, 4, 4]);
  });
});

describe('formatShare', () => {
  it('shows shares below 0.1% as <0.1% and absent classes as nothing', () => {
    expect(formatShare(0, 1000)).toBe('');
    expect(formatShare(1, 12_000_000)).toBe('<0.1%');
    expect(formatShare(999, 1_000_000)).toBe('<0.1%');
    expect(formatShare(1000, 1_000_000)).toBe('0.1%');
    expect(formatShare(333, 1000)).toBe('33.3%');
    expect(formatShare(999_999, 1_000_000)).toBe('>99.9%');
    expect(formatShare(1000, 1000)).toBe('100.0%');
  });
});
