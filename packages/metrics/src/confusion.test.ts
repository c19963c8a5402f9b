import { describe, expect, it } from 'vitest';
import { ConfusionMatrix } from './confusion.js';

// label:      0 0 1 1 2 255 ; class 3 appears nowhere
// prediction: 0 1 1 1 0 2
const label = Uint8Array.from([0, 0, 1, 1, 2, 255]);
const prediction = Int32Array.from([0, 1, 1, 1, 0, 2]);

describe('ConfusionMatrix', () => {
  it('counts rows = true class, columns = prediction, and skips the ignore index', () => {
    const m = new ConfusionMatrix(4).update(prediction, label);
    expect(Array.from(m.counts)).toEqual([1, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('computes IoU, accuracy, fwIoU and Dice as worked out by hand; an absent class is NaN and left out of the means', () => {
    const r = new ConfusionMatrix(4).update(prediction, label).result();
    // rows [2,2,1,0], columns [2,3,0,0], tp [1,2,0,0]
    [1 / 3, 2 / 3, 0].forEach((v, c) => expect(r.iou[c]).toBeCloseTo(v, 12));
    expect(r.iou[3]).toBeNaN();
    expect(r.mIoU).toBeCloseTo(1 / 3, 12);
    expect(r.pixelAccuracy).toBeCloseTo(3 / 5, 12);
    [0.5, 1, 0].forEach((v, c) => expect(r.accuracy[c]).toBeCloseTo(v, 12));
    expect(r.accuracy[3]).toBeNaN();
    expect(r.meanAccuracy).toBeCloseTo(0.5, 12);
    expect(r.frequencyWeightedIoU).toBeCloseTo((2 / 5) * (1 / 3) + (2 / 5) * (2 / 3), 12);
    [0.5, 0.8, 0].forEach((v, c) => expect(r.dice[c]).toBeCloseTo(v, 12));
    expect(r.support).toEqual([2, 2, 1, 0]);
  });

  it('merging shards equals one pass, and survives a JSON round trip exactly', () => {
    const whole = new ConfusionMatrix(4).update(prediction, label);
    const a = new ConfusionMatrix(4).update(prediction.subarray(0, 3), label.subarray(0, 3));
    const b = ConfusionMatrix.fromJSON(JSON.parse(JSON.stringify(new ConfusionMatrix(4).update(prediction.subarray(3), label.subarray(3)))));
    expect(Array.from(a.merge(b).counts)).toEqual(Array.from(whole.counts));
    expect(a.result()).toEqual(whole.result());
  });

  it('accepts tensor-like inputs', () => {
    const m = new ConfusionMatrix(4).update({ dataSync: () => prediction }, { dataSync: () => label });
    expect(m.result().pixelAccuracy).toBeCloseTo(0.6, 12);
  });

  it('refuses labels that are neither a class nor ignored, predictions out of range and unequal lengths', () => {
    const m = new ConfusionMatrix(3);
    expect(() => m.update(Uint8Array.from([0, 1]), Uint8Array.from([0, 7]))).toThrow(/label value 7 at position 1 is neither a class in 0\.\.2 nor the ignore index 255/);
    expect(() => m.update(Uint8Array.from([0, 5]), Uint8Array.from([0, 1]))).toThrow(/prediction value 5 at position 1/);
    expect(() => m.update(Uint8Array.from([0]), Uint8Array.from([0, 1]))).toThrow(/prediction has 1 values but label has 2/);
    expect(() => m.merge(new ConfusionMatrix(4))).toThrow(/cannot merge a 4-class matrix/);
    expect(() => ConfusionMatrix.fromJSON({ format: 'dropclass-confusion/1', numClasses: 2, ignoreIndex: 255, counts: [1, 2, 3] })).toThrow(/not a dropclass-confusion\/1 matrix/);
  });
});
