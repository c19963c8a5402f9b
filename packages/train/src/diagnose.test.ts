import { describe, expect, it } from 'vitest';
import { defaultRemovedChannels, mostImportantChannels } from './diagnose.js';

describe('the channels the dependency diagnostic removes', () => {
  it('are, per class, the largest positive classifier weights of that class', () => {
    // W [C=4, K=2], row-major: channel c, class k at c * 2 + k.
    const kernel = [
      0.5, -1, // channel 0
      0.9, 0.1, // channel 1
      -0.2, 0.3, // channel 2
      0.7, 0.0, // channel 3
    ];
    expect(mostImportantChannels(kernel, 4, 2, 2)).toEqual([
      [1, 3],
      [1, 2],
    ]);
    // Channels of zero importance are never taken, even when more are asked for.
    expect(mostImportantChannels(kernel, 4, 2, 4)).toEqual([
      [0, 1, 3],
      [1, 2],
    ]);
    expect(() => mostImportantChannels(kernel, 4, 3, 1)).toThrow(/\[4, 3\] classifier kernel has 12 values, got 8/);
    expect(() => mostImportantChannels(kernel, 4, 2, 0)).toThrow(/positive integer, got 0/);
  });

  it('default to one class\'s share of the feature map', () => {
    expect(defaultRemovedChannels(64, 8)).toBe(8);
    expect(defaultRemovedChannels(8, 8)).toBe(1);
    expect(defaultRemovedChannels(4, 8)).toBe(1);
  });
});
