import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ConfusionMatrix } from './confusion.js';
import { dependencyMatrix, formatDependency, renderDependencyHeatmap } from './dependency.js';
import { renderIouBars } from './charts.js';
import { renderOverlay } from './overlay.js';
import { classReport, compareRuns, formatComparison, formatReport } from './report.js';

const classNames = ['road', 'car', 'crab'];
const frequencies = [0.9, 0.095, 0.005];
const result = (pred: number[], label: number[]) => new ConfusionMatrix(3).update(Int32Array.from(pred), Uint8Array.from(label)).result();

describe('reports', () => {
  const baseline = result([0, 0, 1, 0, 0], [0, 0, 1, 1, 2]);
  const dropclass = result([0, 0, 1, 1, 2], [0, 0, 1, 1, 2]);

  it('groups classes by training frequency and averages each group', () => {
    const report = classReport(baseline, { classNames, frequencies });
    expect(report.rows.map((r) => r.group)).toEqual(['frequent', 'frequent', 'under-represented']);
    // IoU road 2/4, car 1/2, crab 0
    expect(report.groups.frequent.mIoU).toBeCloseTo(0.5, 12);
    expect(report.groups['under-represented'].mIoU).toBe(0);
    expect(classReport(baseline, { classNames, frequencies, rareThreshold: 0.1 }).groups['under-represented'].classes).toEqual(['car', 'crab']);
    expect(formatReport(report, 'markdown')).toMatch(/\| crab +\| under-represented \| +0\.50% \| +0\.0 \|/);
    expect(JSON.parse(formatReport(report, 'json')).rows[2].iou).toBe(0);
    expect(() => classReport(baseline, { classNames: ['a'], frequencies })).toThrow(/needs 3 class names/);
  });

  it('compares two runs per class, per group and overall on every shared split', () => {
    const cmp = compareRuns({ name: 'baseline', splits: { val: baseline, 'val-shifted': baseline } }, { name: 'dropclass', splits: { val: dropclass } }, { classNames, frequencies });
    expect(Object.keys(cmp.splits)).toEqual(['val']);
    const val = cmp.splits.val;
    expect(val.rows[2]).toMatchObject({ name: 'crab', a: 0, b: 1, delta: 1 });
    expect(val.groups['under-represented'].delta).toBe(1);
    expect(val.mIoU.delta).toBeCloseTo(1 - (0.5 + 0.5 + 0) / 3, 12);
    const text = formatComparison(cmp, 'terminal');
    expect(text).toMatch(/crab +under-represented +0\.50% +0\.0 +100\.0 +\+100\.0/);
  });

  it('draws IoU bars of two runs and colour overlays as PNGs', async () => {
    const cmp = compareRuns({ name: 'baseline', splits: { val: baseline } }, { name: 'dropclass', splits: { val: dropclass } }, { classNames, frequencies });
    const bars = await sharp(await renderIouBars(cmp, 'val')).metadata();
    expect(bars.format).toBe('png');
    expect(bars.width).toBeGreaterThan(200);

    const image = { data: new Uint8Array(2 * 1 * 3).fill(100), width: 2, height: 1, channels: 3 };
    const png = await renderOverlay({ image, prediction: Uint8Array.from([0, 1]), label: Uint8Array.from([1, 255]), palette: [[255, 0, 0], [0, 0, 255]], alpha: 1, scale: 1 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    // panels: image | ground truth | prediction, 4 px gaps
    expect([info.width, info.height]).toEqual([2 * 3 + 8, 1]);
    const px = (x: number) => Array.from(data.subarray(x * info.channels, x * info.channels + 3));
    expect(px(0)).toEqual([100, 100, 100]);
    expect(px(6)).toEqual([0, 0, 255]);
    expect(px(7)).toEqual([100, 100, 100]);
    expect(px(12)).toEqual([255, 0, 0]);
    expect(px(13)).toEqual([0, 0, 255]);
  });
});

describe('class-dependency diagnostic', () => {
  it('measures the IoU drop of every class when each class is suppressed', async () => {
    const base = result([0, 0, 1, 1, 2], [0, 0, 1, 1, 2]);
    // suppressing road breaks car; suppressing car or crab changes nothing else
    const suppressed = [result([0, 0, 0, 0, 2], [0, 0, 1, 1, 2]), result([0, 0, 0, 0, 2], [0, 0, 1, 1, 2]), base];
    const dep = dependencyMatrix(base, suppressed, classNames);
    // road IoU 2/4 and car 0 in both suppressed rows; crab stays 1
    expect(dep.matrix[0]).toEqual([0.5, 1, 0]);
    expect(dep.matrix[2]).toEqual([0, 0, 0]);
    expect(dep.meanOffDiagonalDrop).toBeCloseTo((1 + 0 + 0.5 + 0 + 0 + 0) / 6, 12);
    expect(dep.dropSufferedBy[1]).toBeCloseTo(0.5, 12);
    expect(dep.selfDrop).toEqual([0.5, 1, 0]);
    expect(formatDependency(dep, 'markdown')).toMatch(/mean off-diagonal IoU drop: 25\.00 points; mean own-class drop \(diagonal\): 50\.00 points/);
    const meta = await sharp(await renderDependencyHeatmap(dep)).metadata();
    expect(meta.format).toBe('png');
    expect(() => dependencyMatrix(base, [base], classNames)).toThrow(/needs 3 suppressed results/);
  });
});
