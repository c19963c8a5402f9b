import { describe, expect, it } from 'vitest';
import { PerImageConfusion, bootstrapIoU, pairedBootstrapIoU } from './bootstrap.js';
import type { ClassGroup } from './report.js';

/** A small seeded generator for the constructed cases. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * An image of 100 pixels: 80 of class 0, 20 of class 1; each class-1 pixel is predicted as class 1
 * with probability `hit`, each class-0 pixel as class 1 with probability `falseAlarm`.
 */
function image(random: () => number, hit: number, falseAlarm: number): { prediction: Int32Array; label: Int32Array } {
  const label = Int32Array.from({ length: 100 }, (_, i) => (i < 80 ? 0 : 1));
  const prediction = label.map((t) => (t === 1 ? (random() < hit ? 1 : 0) : random() < falseAlarm ? 1 : 0));
  return { prediction, label };
}

const groups: ClassGroup[] = ['frequent', 'under-represented'];

/** Class-1 IoU of the infinite population: E[tp] / (E[tp] + E[fn] + E[fp]). */
const trueIou = (hit: number, falseAlarm: number) => (20 * hit) / (20 * hit + 20 * (1 - hit) + 80 * falseAlarm);

describe('PerImageConfusion', () => {
  it('keeps one matrix per image, sums to the split matrix and survives JSON', () => {
    const m = new PerImageConfusion(3);
    m.addBatch(Int32Array.from([0, 1, 2, 2, 0, 0, 1, 1]), Int32Array.from([0, 1, 1, 255, 0, 2, 1, 1]), 2);
    expect(m.length).toBe(2);
    expect(Array.from(m.image(0).counts)).toEqual([1, 0, 0, 0, 1, 1, 0, 0, 0]);
    expect(Array.from(m.image(1).counts)).toEqual([1, 0, 0, 0, 2, 0, 1, 0, 0]);
    expect(Array.from(m.total().counts)).toEqual([2, 0, 0, 0, 3, 1, 1, 0, 0]);
    const back = PerImageConfusion.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
    expect(Array.from(back.total().counts)).toEqual(Array.from(m.total().counts));
    expect(() => m.addBatch(Int32Array.from([0, 1, 2]), Int32Array.from([0, 1, 2]), 2)).toThrow(/divisible by 2/);
  });
});

describe('bootstrap over images', () => {
  it('gives a 95% interval that holds the population IoU about 95% of the time, and is not trivially wide', () => {
    const [hit, falseAlarm] = [0.6, 0.05];
    const truth = trueIou(hit, falseAlarm);
    let covered = 0;
    const trials = 40;
    for (let t = 0; t < trials; t++) {
      const random = lcg(1000 + t);
      const run = new PerImageConfusion(2);
      for (let i = 0; i < 300; i++) {
        const { prediction, label } = image(random, hit, falseAlarm);
        run.addImage(prediction, label);
      }
      const ci = bootstrapIoU([run], { groups, resamples: 400, seed: t }).perClass[1];
      expect(ci.lower).toBeLessThanOrEqual(ci.estimate);
      expect(ci.upper).toBeGreaterThanOrEqual(ci.estimate);
      expect(ci.upper - ci.lower).toBeLessThan(0.08);
      expect(ci.upper - ci.lower).toBeGreaterThan(0.005);
      if (ci.lower <= truth && truth <= ci.upper) covered++;
    }
    expect(covered).toBeGreaterThanOrEqual(34);
  });

  it('finds a clearly better model significantly better, with the same images for both', () => {
    const random = lcg(7);
    const [a, b] = [new PerImageConfusion(2), new PerImageConfusion(2)];
    for (let i = 0; i < 200; i++) {
      const x = image(random, 0.5, 0.05);
      const y = image(random, 0.7, 0.05);
      a.addImage(x.prediction, x.label);
      b.addImage(y.prediction, y.label);
    }
    const paired = pairedBootstrapIoU([a], [b], { groups, seed: 1 });
    const rare = paired.perClass[1];
    expect(rare.estimate).toBeCloseTo(rare.b - rare.a, 12);
    expect(rare.estimate).toBeGreaterThan(0.1);
    expect(rare.lower).toBeGreaterThan(0);
    expect(rare.significant).toBe(true);
    expect(paired.groups['under-represented'].significant).toBe(true);
    expect(paired.groups['under-represented'].estimate).toBeCloseTo(rare.estimate, 12);
  });

  it('does not call a difference that is only image noise significant', () => {
    const random = lcg(11);
    const a = new PerImageConfusion(2);
    const images = Array.from({ length: 200 }, () => image(random, 0.6, 0.05));
    for (const x of images) a.addImage(x.prediction, x.label);
    // B: the same predictions, shifted by one image: the same totals, different pairs.
    const b = new PerImageConfusion(2);
    for (let i = 0; i < images.length; i++) b.addImage(images[(i + 1) % images.length].prediction, images[i].label);
    const paired = pairedBootstrapIoU([a], [b], { groups, seed: 2 });
    const rare = paired.perClass[1];
    expect(rare.estimate).toBeCloseTo(0, 12);
    expect(rare.lower).toBeLessThan(0);
    expect(rare.upper).toBeGreaterThan(0);
    expect(rare.significant).toBe(false);
    expect(paired.mIoU.significant).toBe(false);
  });

  it('over seeds: the estimate is the seed mean, std the spread, and seeds are paired', () => {
    const make = (hit: number, seed: number) => {
      const random = lcg(seed);
      const run = new PerImageConfusion(2);
      for (let i = 0; i < 100; i++) {
        const { prediction, label } = image(random, hit, 0.05);
        run.addImage(prediction, label);
      }
      return run;
    };
    const a = [make(0.5, 1), make(0.5, 2), make(0.5, 3)];
    const b = [make(0.55, 4), make(0.6, 5), make(0.65, 6)];
    const single = b.map((r) => bootstrapIoU([r], { groups, resamples: 10 }).perClass[1].estimate);
    const pooled = bootstrapIoU(b, { groups, resamples: 200 }).perClass[1];
    expect(pooled.estimate).toBeCloseTo((single[0] + single[1] + single[2]) / 3, 12);
    const mean = pooled.estimate;
    expect(pooled.std).toBeCloseTo(Math.sqrt(single.reduce((s, x) => s + (x - mean) ** 2, 0) / 2), 12);
    const paired = pairedBootstrapIoU(a, b, { groups, resamples: 200 });
    expect(paired.perClass[1].b).toBeCloseTo(mean, 12);
    expect(() => pairedBootstrapIoU(a, b.slice(0, 2), { groups })).toThrow(/in pairs/);
  });
});
