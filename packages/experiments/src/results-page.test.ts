import { describe, expect, it } from 'vitest';
import type { PairedInterval } from '@dropclass/metrics';
import { unlearnedClasses, verdict } from './results-page.js';

const diff = (estimate: number, lower: number, upper: number): PairedInterval => ({
  estimate,
  lower,
  upper,
  std: Number.NaN,
  a: 0,
  b: estimate,
  significant: lower > 0 || upper < 0,
});

describe('verdict of a difference', () => {
  it('names the direction of a difference whose interval excludes 0', () => {
    expect(verdict(diff(-0.02, -0.03, -0.01))).toBe('yes, lower');
    expect(verdict(diff(0.02, 0.01, 0.03))).toBe('yes, higher');
  });

  it('calls a difference whose interval covers 0 noise', () => {
    expect(verdict(diff(0.02, -0.01, 0.05))).toBe('no');
  });

  it('does not call a difference below the tables\' precision beyond the noise, even with an interval off 0', () => {
    // A class neither model predicts: a few pixels apart, consistently; the table shows -0.0 [-0.0, -0.0].
    expect(verdict(diff(-0.00001, -0.00002, -0.000005))).toBe('no (< 0.1)');
  });

  it('says n/a for a class absent from the split', () => {
    expect(verdict(diff(Number.NaN, Number.NaN, Number.NaN))).toBe('n/a');
  });
});

describe('unlearnedClasses', () => {
  it('names a class some seed never learned, even when the mean over seeds passes the bar', () => {
    // boat: 62.7 in seed 0, 4.1 in seed 1 (mean 33.4, above 20); crab learned in both.
    const perSeed = [
      [0.99, 0.627, 0.65],
      [0.99, 0.041, 0.66],
    ];
    expect(unlearnedClasses(['road', 'boat', 'crab'], [0, 1], perSeed)).toEqual([{ name: 'boat', seeds: [1] }]);
  });

  it('counts an absent class (NaN) as not learned, and finds none when every seed learned every class', () => {
    expect(unlearnedClasses(['road', 'boat'], [3], [[0.9, Number.NaN]])).toEqual([{ name: 'boat', seeds: [3] }]);
    expect(unlearnedClasses(['road', 'boat'], [0, 1], [[0.9, 0.3], [0.8, 0.25]])).toEqual([]);
  });
});
