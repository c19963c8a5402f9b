import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { dropClassObjective } from '../dropclass/objective.js';
import { randomValues, useCpuBackend } from '@dropclass/testing/cpu';
import { type PixelLossOptions, checkPixelLoss, pixelLoss } from './pixel-loss.js';

const K = 4;
const IGNORE = 255;

/**
 * The losses by their definitions, in float64 over plain arrays: per pixel `-log p_y` (focal:
 * `(1 - p_y)^gamma` times it), weighted by `w_y`; OHEM keeps the labelled pixels whose `p_y` is
 * below max(threshold, the min(minKept, n - 1)-th smallest `p_y`) (0-based, over the labelled pixels).
 */
function reference(logits: Float32Array, labels: number[], loss: PixelLossOptions, excluded = -1): number {
  const rows = labels.length;
  const nll: number[] = [];
  const p: number[] = [];
  const counted: boolean[] = [];
  for (let i = 0; i < rows; i++) {
    const row = Array.from(logits.subarray(i * K, (i + 1) * K));
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    const y = labels[i];
    counted.push(y >= 0 && y < K && y !== IGNORE && y !== excluded);
    const l = counted[i] ? logSum - row[y] : 0;
    nll.push(l);
    p.push(Math.exp(-l));
  }
  let keep = counted;
  if (loss.kind === 'ohem') {
    const sorted = p.filter((_, i) => counted[i]).sort((a, b) => a - b);
    const index = Math.max(0, Math.min(loss.minKept ?? 100000, sorted.length - 1));
    const bound = Math.max(loss.threshold ?? 0.7, sorted.length ? sorted[index] : 0);
    keep = counted.map((c, i) => c && p[i] < bound);
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < rows; i++) {
    if (!keep[i]) continue;
    const w = loss.classWeights ? loss.classWeights[labels[i]] : 1;
    const l = loss.kind === 'focal' ? Math.pow(1 - p[i], loss.gamma ?? 2) * nll[i] : nll[i];
    num += w * l;
    den += w;
  }
  return den > 0 ? num / den : 0;
}

const H = 4;
const W = 5;
const labelsOf = (seed: number) => Array.from({ length: 2 * H * W }, (_, i) => (i % 7 === 3 ? IGNORE : (i * 5 + seed) % K));

function evaluate(logits: Float32Array, labels: number[], loss: PixelLossOptions, excluded = -1): number {
  return tf.tidy(() =>
    pixelLoss(tf.tensor4d(logits, [2, H, W, K]), tf.tensor3d(labels, [2, H, W], 'int32'), { loss, ignoreIndex: IGNORE, excludedClass: excluded }).dataSync()[0],
  );
}

const CASES: [string, PixelLossOptions, number?][] = [
  ['cross-entropy', { kind: 'ce' }],
  ['class-weighted cross-entropy', { kind: 'ce', classWeights: [0.2, 1, 3, 0.5] }],
  ['class-weighted cross-entropy without the dropped class', { kind: 'ce', classWeights: [0.2, 1, 3, 0.5] }, 2],
  ['focal loss, gamma 2', { kind: 'focal' }],
  ['focal loss, gamma 0.5, class weights', { kind: 'focal', gamma: 0.5, classWeights: [1, 2, 1, 4] }],
  ['OHEM, the threshold binding', { kind: 'ohem', threshold: 0.4, minKept: 3 }],
  ['OHEM, minKept binding (every pixel below the 10th smallest probability)', { kind: 'ohem', threshold: 0.01, minKept: 10 }],
  ['OHEM, minKept above the labelled pixels', { kind: 'ohem', threshold: 0.05, minKept: 1000 }],
];

describe('pixelLoss', () => {
  beforeAll(() => useCpuBackend());

  it.each(CASES)('%s: the value equals the definition', (_, loss, excluded) => {
    for (const seed of [1, 2, 3]) {
      const logits = randomValues(2 * H * W * K, seed).map((v) => 2 * v);
      const labels = labelsOf(seed);
      const want = reference(logits, labels, loss, excluded);
      expect(want).toBeGreaterThan(0);
      expect(evaluate(logits, labels, loss, excluded)).toBeCloseTo(want, 5);
    }
  });

  it.each(CASES)('%s: the gradient equals central differences of the definition', (_, loss, excluded) => {
    const logits = randomValues(2 * H * W * K, 9).map((v) => 2 * v);
    const labels = labelsOf(9);
    const grad = tf.tidy(() => {
      const labelTensor = tf.tensor3d(labels, [2, H, W], 'int32');
      const g = tf.grad((x: tf.Tensor) => pixelLoss(x as tf.Tensor4D, labelTensor, { loss, ignoreIndex: IGNORE, excludedClass: excluded }));
      return g(tf.tensor4d(logits, [2, H, W, K])).dataSync();
    });
    const h = 1e-3;
    for (const i of [0, 5, 13, 27, 40, 61, 79]) {
      const up = Float32Array.from(logits);
      const down = Float32Array.from(logits);
      up[i] += h;
      down[i] -= h;
      const numeric = (reference(up, labels, loss, excluded) - reference(down, labels, loss, excluded)) / (2 * h);
      expect(grad[i], `logit ${i}`).toBeCloseTo(numeric, 3);
    }
  });

  it('is 0 with a zero gradient when no pixel counts', () => {
    const logits = randomValues(2 * H * W * K, 4);
    const labels = labelsOf(4).map((y) => (y === 1 || y === IGNORE ? y : IGNORE));
    for (const loss of [{ kind: 'ce', classWeights: [1, 1, 1, 1] }, { kind: 'focal' }, { kind: 'ohem', minKept: 5 }] as PixelLossOptions[]) {
      expect(evaluate(logits, labels, loss, 1)).toBe(0);
    }
  });

  it('upsamples coarser logits to the labels, and keeps no tensor', () => {
    const before = tf.memory().numTensors;
    const value = tf.tidy(() => {
      const logits = tf.tensor4d(randomValues(2 * 2 * 2 * K, 5), [2, 2, 2, K]);
      return pixelLoss(logits, tf.tensor3d(labelsOf(5), [2, H, H + 1], 'int32'), { loss: { kind: 'focal' }, ignoreIndex: IGNORE }).dataSync()[0];
    });
    expect(Number.isFinite(value) && value > 0).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('checks its options against the classes, naming the bad value', () => {
    expect(() => checkPixelLoss({ classWeights: [1, 2] }, 3)).toThrow('loss.classWeights must be 3 finite non-negative numbers, not all 0 (one per class), got [1, 2]');
    expect(() => checkPixelLoss({ classWeights: [0, 0, 0] }, 3)).toThrow('not all 0');
    expect(() => checkPixelLoss({ kind: 'dice' as 'ce' }, 3)).toThrow('loss.kind must be ce, focal or ohem, got "dice"');
    expect(() => checkPixelLoss({ kind: 'ohem', threshold: 1.5 }, 3)).toThrow('loss.threshold must be in (0, 1], got 1.5');
    expect(() => checkPixelLoss({ kind: 'ohem', minKept: 0 }, 3)).toThrow('loss.minKept must be a positive integer, got 0');
  });
});

describe('the DropClass objective with another pixel loss', () => {
  beforeAll(() => useCpuBackend());

  function terms(loss: PixelLossOptions | undefined, dropped: number) {
    return tf.tidy(() => {
      const C = 3;
      const t = dropClassObjective({
        features: tf.tensor4d(randomValues(2 * H * W * C, 11), [2, H, W, C]),
        classifierKernel: tf.tensor2d(randomValues(C * K, 12), [C, K]),
        classifierBias: tf.tensor1d(randomValues(K, 13)),
        selection: { kernel: tf.tensor2d(randomValues(C * C, 14), [C, C]), bias: tf.zeros([C]), gamma: tf.ones([C]), beta: tf.zeros([C]) },
        labels: tf.tensor3d(labelsOf(11), [2, H, W], 'int32'),
        droppedClass: dropped,
        progress: 0.5,
        alpha: 10,
        loss,
      });
      return {
        ce: t.lossCe.dataSync()[0],
        drop: t.lossDrop.dataSync()[0],
        sup: t.lossSup.dataSync()[0],
        logits: t.logits.dataSync().slice() as Float32Array,
        logitsDrop: t.logitsDrop.dataSync().slice() as Float32Array,
      };
    });
  }

  it('applies the loss to CE and CE_drop (without the dropped class) and keeps the suppression term', () => {
    const loss: PixelLossOptions = { kind: 'focal', classWeights: [1, 3, 0.5, 2] };
    const plain = terms(undefined, 2);
    const focal = terms(loss, 2);
    expect(focal.ce).toBeCloseTo(reference(focal.logits, labelsOf(11), loss), 5);
    expect(focal.drop).toBeCloseTo(reference(focal.logitsDrop, labelsOf(11), loss, 2), 5);
    expect(focal.sup).toBeCloseTo(plain.sup, 6);
    expect(focal.ce).not.toBeCloseTo(plain.ce, 2);
  });

  it('equals the fused plain cross-entropy when every class weighs 1', () => {
    const plain = terms(undefined, 1);
    const weighted = terms({ kind: 'ce', classWeights: [1, 1, 1, 1] }, 1);
    expect(weighted.ce).toBeCloseTo(plain.ce, 5);
    expect(weighted.drop).toBeCloseTo(plain.drop, 5);
    expect(weighted.sup).toBeCloseTo(plain.sup, 6);
  });
});
