import * as tf from '@tensorflow/tfjs-core';
import { NO_CLASS_DROPPED } from '../dropclass/importance.js';
import { resizeBilinear } from '../dropclass/upsample.js';

/**
 * The pixel loss the cross-entropy terms of the objective use (both `CE` and `CE_drop`), with the
 * remedies against class imbalance a user would try first. The default, `{ kind: 'ce' }` without
 * class weights, is the plain mean cross-entropy of the SPEC.
 */
export interface PixelLossOptions {
  /**
   * - `ce`: cross-entropy `-log p_y`;
   * - `focal`: focal loss `-(1 - p_y)^gamma log p_y` (Lin et al. 2017, softmax form);
   * - `ohem`: cross-entropy over the hard pixels only (online hard example mining, as
   *   mmsegmentation's `OHEMPixelSampler` and HRNet's `OhemCrossEntropy`): of the labelled pixels of
   *   the batch, those whose probability of their own label `p_y` is below
   *   `max(threshold, the minKept-th smallest p_y)` (0-based, clamped to the labelled pixels).
   */
  kind?: 'ce' | 'focal' | 'ohem';
  /**
   * Weight `w_c` of each class: the loss is the weighted mean `sum w_y l / sum w_y` over the pixels
   * counted (PyTorch's `CrossEntropyLoss(weight=...)`). Absent: every class weighs 1.
   */
  classWeights?: number[];
  /** Focal exponent; default 2. */
  gamma?: number;
  /** OHEM probability threshold; default 0.7. */
  threshold?: number;
  /** OHEM: at least this many labelled pixels of a batch are kept; default 100000 (mmsegmentation's and HRNet's default). */
  minKept?: number;
}

export const DEFAULT_FOCAL_GAMMA = 2;
export const DEFAULT_OHEM_THRESHOLD = 0.7;
export const DEFAULT_OHEM_MIN_KEPT = 100_000;

/** Whether `loss` is the plain, unweighted cross-entropy (the fused softmax-loss kernels compute it). */
export function isPlainCrossEntropy(loss: PixelLossOptions | undefined): boolean {
  return !loss || ((loss.kind ?? 'ce') === 'ce' && !loss.classWeights);
}

/** Checks loss options against the number of classes; a `RangeError` names the bad value. */
export function checkPixelLoss(loss: PixelLossOptions, numClasses: number): void {
  const kind = loss.kind ?? 'ce';
  if (!['ce', 'focal', 'ohem'].includes(kind)) throw new RangeError(`loss.kind must be ce, focal or ohem, got ${JSON.stringify(kind)}`);
  const w = loss.classWeights;
  if (w && (w.length !== numClasses || !w.every((x) => Number.isFinite(x) && x >= 0) || !w.some((x) => x > 0))) {
    throw new RangeError(`loss.classWeights must be ${numClasses} finite non-negative numbers, not all 0 (one per class), got [${w.join(', ')}]`);
  }
  if (loss.gamma !== undefined && !(loss.gamma >= 0)) throw new RangeError(`loss.gamma must be >= 0, got ${loss.gamma}`);
  if (loss.threshold !== undefined && !(loss.threshold > 0 && loss.threshold <= 1)) throw new RangeError(`loss.threshold must be in (0, 1], got ${loss.threshold}`);
  if (loss.minKept !== undefined && !(Number.isInteger(loss.minKept) && loss.minKept >= 1)) throw new RangeError(`loss.minKept must be a positive integer, got ${loss.minKept}`);
}

/**
 * The pixel loss of `logits` `[B,h,w,K]` against `labels` `[B,H,W]` (logits coarser than the labels
 * are upsampled bilinearly first): the (class-weighted) mean of the per-pixel loss over the pixels
 * labelled with a class other than `excludedClass` (and, for OHEM, kept as hard); 0, not NaN, when
 * no pixel counts. Differentiable in `logits`; the OHEM selection itself carries no gradient.
 */
export function pixelLoss(logits: tf.Tensor4D, labels: tf.Tensor3D, options: { loss: PixelLossOptions; ignoreIndex: number; excludedClass?: number }): tf.Scalar {
  const { loss, ignoreIndex } = options;
  const excluded = options.excludedClass ?? NO_CLASS_DROPPED;
  return tf.tidy(() => {
    const sized = logits.shape[1] === labels.shape[1] && logits.shape[2] === labels.shape[2] ? logits : resizeBilinear(logits, labels.shape[1], labels.shape[2]);
    const k = sized.shape[3];
    const flat = tf.reshape(sized, [-1, k]) as tf.Tensor2D;
    const y = tf.reshape(labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32'), [-1]) as tf.Tensor1D;
    // Counted: a class id (0..K-1) that is neither the ignore index nor the excluded class.
    let counted = tf.logicalAnd(tf.greaterEqual(y, 0), tf.less(y, k));
    for (const c of [ignoreIndex, excluded]) if (c >= 0 && c < k) counted = tf.logicalAnd(counted, tf.notEqual(y, c));
    const safe = tf.where(counted, y, tf.zerosLike(y)) as tf.Tensor1D;
    const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(safe, k), tf.logSoftmax(flat)), 1)) as tf.Tensor1D;
    const kind = loss.kind ?? 'ce';
    const perPixel = kind === 'focal' ? tf.mul(tf.pow(tf.sub(1, tf.exp(tf.neg(nll))), loss.gamma ?? DEFAULT_FOCAL_GAMMA), nll) : nll;
    let weight: tf.Tensor = tf.cast(counted, 'float32');
    // Scaled to a largest weight of 1 (the weighted mean does not change), so that any counted pixel weighs far above the guard below.
    if (loss.classWeights) weight = tf.mul(weight, tf.gather(tf.tensor1d(loss.classWeights.map((w) => w / Math.max(...loss.classWeights!))), safe));
    if (kind === 'ohem') weight = tf.mul(weight, hardPixels(nll, counted as tf.Tensor1D, loss.threshold ?? DEFAULT_OHEM_THRESHOLD, loss.minKept ?? DEFAULT_OHEM_MIN_KEPT));
    // A batch with no counted pixel gives 0 / 1e-12 = 0.
    return tf.div(tf.sum(tf.mul(weight, perPixel)), tf.maximum(tf.sum(weight), 1e-12)) as tf.Scalar;
  });
}

/**
 * The OHEM mask (1 for a kept pixel) from the per-pixel cross-entropy: the probability of the own
 * label is `exp(-nll)`; uncounted pixels sort last. Computed inside a custom gradient that returns
 * zeros, so the selection (a sort and comparisons, which have no gradient) stays off the tape.
 */
function hardPixels(nll: tf.Tensor1D, counted: tf.Tensor1D, threshold: number, minKept: number): tf.Tensor1D {
  const select = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = inputs[0] as tf.Tensor;
    return {
      value: tf.tidy(() => {
        const p = tf.where(counted, tf.exp(tf.neg(x)), tf.fill(x.shape, 2)) as tf.Tensor1D;
        const n = p.shape[0];
        const ascending = tf.neg(tf.topk(tf.neg(p), n).values) as tf.Tensor1D;
        const labelled = tf.sum(tf.cast(counted, 'int32'));
        const int = (v: number) => tf.scalar(v, 'int32');
        const index = tf.maximum(tf.minimum(int(minKept), tf.sub(labelled, int(1))), int(0));
        const bound = tf.maximum(tf.gather(ascending, tf.reshape(index, [1])), threshold);
        return tf.cast(tf.logicalAnd(counted, tf.less(p, bound)), 'float32');
      }),
      gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
    };
  });
  return select(nll) as tf.Tensor1D;
}
