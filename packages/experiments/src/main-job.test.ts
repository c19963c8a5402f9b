import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChildProgress, defaultJobs } from './main-job.js';

describe('defaultJobs', () => {
  it('gives every run its own process, as far as the cores go', () => {
    expect(defaultJobs(2, 2, false)).toBe(2);
    expect(defaultJobs(6, 16, false)).toBe(6);
    expect(defaultJobs(6, 4, false)).toBe(4);
    expect(defaultJobs(2, 1, false)).toBe(1);
  });

  it('trains one run at a time when nothing is left to train, or with --quick', () => {
    expect(defaultJobs(0, 8, false)).toBe(1);
    expect(defaultJobs(2, 8, true)).toBe(1);
  });
});

describe('ChildProgress', () => {
  afterEach(() => vi.useRealTimers());

  it('prints the newest progress line of each running child, and forgets a child that ended', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const progress = new ChildProgress((l) => lines.push(l), 1000);
    progress.update('seed 0 baseline', 'baseline unet: 127,712 trainable parameters');
    progress.update('seed 0 baseline', 'train 10/800 | ce 0.500 drop 0.000 sup 0.000 | 20.1 img/s');
    progress.update('seed 0 baseline', 'train 20/800 | ce 0.400 drop 0.000 sup 0.000 | 20.3 img/s');
    progress.update('seed 0 dropclass', 'train 15/800 | ce 0.600 drop 0.100 sup 0.200 | 18.0 img/s');
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual(['seed 0 baseline: train 20/800 | 20.3 img/s  ·  seed 0 dropclass: train 15/800 | 18.0 img/s']);
    progress.update('seed 0 dropclass', 'evaluating val (3200 images)');
    progress.update('seed 0 dropclass', 'dependency 328/1000 | val');
    progress.end('seed 0 baseline');
    vi.advanceTimersByTime(1000);
    expect(lines[1]).toBe('seed 0 dropclass: dependency 328/1000 | val');
    progress.stop();
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(2);
  });
});
