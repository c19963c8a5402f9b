import * as tf from '@tensorflow/tfjs-core';
import { backendRegisters } from './fused-kernels.js';

/**
 * The one batch-norm convention of every layer here, PyTorch's `BatchNorm2d`: training normalises
 * with the batch's mean and biased variance; the moving statistics move toward the batch's mean and
 * UNBIASED variance with weight 0.1 for the new batch (`momentum: 0.9` in tfjs-layers' terms);
 * epsilon 1e-5.
 */
export const BN_NEW_BATCH_WEIGHT = 0.1;

/** A moving statistic that a layer owns (a tfjs-layers `LayerVariable`). */
interface MovingStatistic {
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

/**
 * Name of the kernel a backend may register for {@link updateMovingStatistics}: both moving
 * statistics of a layer moved in one call, where tfjs ops take seven (each a kernel call, with the
 * engine's bookkeeping, on a vector of a few hundred values at most).
 *
 * Inputs `{ mean, variance, batchMean, batchVariance }`, float32 `[C]` each; attributes
 * {@link MovingStatisticsAttrs}. Outputs, in order, the new moving mean and variance, each operation
 * rounded to float32 as tfjs ops round it (no fused multiply-add):
 * `mean + (batchMean - mean) * newBatchWeight` and
 * `variance + (batchVariance * unbiasing - variance) * newBatchWeight`.
 */
export const MOVING_STATISTICS_KERNEL = 'DropClassMovingStatistics';

/** The attributes of {@link MOVING_STATISTICS_KERNEL}. */
export interface MovingStatisticsAttrs extends tf.NamedAttrMap {
  /** The factor that makes the batch's biased variance unbiased: `count / (count - 1)`, or 1. */
  unbiasing: number;
  /** The weight of the batch's statistics. */
  newBatchWeight: number;
}

/**
 * Moves `moving <- moving + (batch - moving) * newBatchWeight`, with the batch's variance made
 * unbiased over the `count` values per channel it was taken from (the convention above). Runs the
 * backend's kernel where it registers {@link MOVING_STATISTICS_KERNEL}, else tfjs ops.
 */
export function updateMovingStatistics(
  moving: { mean: MovingStatistic; variance: MovingStatistic },
  batch: { mean: tf.Tensor; variance: tf.Tensor },
  count: number,
  newBatchWeight = BN_NEW_BATCH_WEIGHT,
): void {
  const attrs: MovingStatisticsAttrs = { unbiasing: count > 1 ? count / (count - 1) : 1, newBatchWeight };
  tf.tidy(() => {
    if (backendRegisters(MOVING_STATISTICS_KERNEL)) {
      const inputs = { mean: moving.mean.read(), variance: moving.variance.read(), batchMean: batch.mean, batchVariance: batch.variance };
      const [mean, variance] = tf.engine().runKernel(MOVING_STATISTICS_KERNEL, inputs, attrs) as tf.Tensor[];
      moving.mean.write(mean);
      moving.variance.write(variance);
      return;
    }
    const unbiased = tf.mul(batch.variance, attrs.unbiasing);
    for (const [statistic, value] of [
      [moving.mean, batch.mean],
      [moving.variance, unbiased],
    ] as const) {
      const current = statistic.read();
      statistic.write(tf.add(current, tf.mul(tf.sub(value, current), newBatchWeight)));
    }
  });
}

/**
 * Name of the fused forward kernel a backend may register for {@link batchNormInTraining}.
 *
 * Inputs `{ x, gamma, beta }`: float32 `[N, C]`, `[C]`, `[C]`; attributes `{ epsilon, relu }`.
 * Outputs, in order: `y` `[N, C]` (`gamma (x - mean) / sqrt(variance + epsilon) + beta`, then
 * ReLU when `relu`), and the batch's `mean` and biased `variance`, `[C]` each.
 */
export const BATCH_NORM_TRAINING_KERNEL = 'DropClassBatchNormTraining';

/**
 * Name of the fused gradient kernel that goes with {@link BATCH_NORM_TRAINING_KERNEL}.
 *
 * Inputs `{ x, dy, gamma, mean, variance, y }`: the forward kernel's input, the gradient of its `y`,
 * and its outputs (`y` tells the ReLU's mask when `relu`). Outputs, in order: the gradients of `x`,
 * `gamma` and `beta`, through the batch statistics.
 */
export const BATCH_NORM_TRAINING_GRAD_KERNEL = 'DropClassBatchNormTrainingGrad';

/** The attributes of {@link BATCH_NORM_TRAINING_KERNEL} and {@link BATCH_NORM_TRAINING_GRAD_KERNEL}. */
export interface BatchNormTrainingAttrs extends tf.NamedAttrMap {
  /** Added to the variance before its square root. */
  epsilon: number;
  /** Whether `y` is the ReLU of the normalised values (and the gradient masked by `y > 0`). */
  relu: boolean;
}

/** A batch's normalised values and the statistics they were normalised with. */
export interface BatchNormResult {
  y: tf.Tensor;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Batch norm in training over every axis but the last (channels): `y = gamma (x - mean) / sqrt(var +
 * eps) + beta` with the batch's mean and biased variance, which are returned too (for moving
 * averages; no gradient flows through them). With `relu`, `y` is `relu` of that.
 *
 * The gradient is the closed form through the batch statistics,
 * `dx = gamma / sqrt(var + eps) (dy - mean(dy) - x^ mean(dy x^))`, `dgamma = sum(dy x^)`,
 * `dbeta = sum(dy)`, where tfjs would differentiate `moments` and `batchNorm` op by op (about twice
 * as many passes over a `[B,H,W,C]` tensor). A backend that registers
 * {@link BATCH_NORM_TRAINING_KERNEL} and {@link BATCH_NORM_TRAINING_GRAD_KERNEL} runs each
 * direction as one kernel; elsewhere it is a composite of tfjs ops.
 */
export function batchNormInTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number, options: { relu?: boolean } = {}): BatchNormResult {
  const relu = options.relu ?? false;
  if (x.size > 0 && backendRegisters(BATCH_NORM_TRAINING_KERNEL, BATCH_NORM_TRAINING_GRAD_KERNEL)) return fusedBatchNormInTraining(x, gamma, beta, epsilon, relu);
  const { y, mean, variance } = compositeBatchNormInTraining(x, gamma, beta, epsilon);
  return { y: relu ? tf.relu(y) : y, mean, variance };
}

/** Statistics made inside a custom gradient's forward pass, kept out of its clean-up, handed back as ordinary tensors. */
function handBack(kept: tf.Tensor[]): tf.Tensor1D[] {
  return kept.map((t) => {
    const copy = tf.clone(t) as tf.Tensor1D;
    t.dispose();
    return copy;
  });
}

function fusedBatchNormInTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number, relu: boolean): BatchNormResult {
  const channels = x.shape[x.rank - 1];
  const attrs: BatchNormTrainingAttrs = { epsilon, relu };
  let statistics: tf.Tensor[] = [];
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const rows = tf.reshape(input, [-1, channels]);
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAINING_KERNEL, { x: rows, gamma: scale, beta: offset }, attrs) as tf.Tensor[];
    statistics = [tf.keep(mean), tf.keep(variance)];
    save([rows, scale, mean, variance, y]);
    return {
      value: tf.reshape(y, input.shape),
      gradFunc: (dy: tf.Tensor, [xs, g, m, v, ys]: tf.Tensor[]) => {
        const inputs = { x: xs, dy: tf.reshape(dy, xs.shape), gamma: g, mean: m, variance: v, y: ys };
        const [dx, dGamma, dBeta] = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD_KERNEL, inputs, attrs) as tf.Tensor[];
        return [tf.reshape(dx, input.shape), dGamma, dBeta];
      },
    };
  });
  const y = normalise(x, gamma, beta);
  const [mean, variance] = handBack(statistics);
  return { y, mean, variance };
}

function compositeBatchNormInTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormResult {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  let statistics: tf.Tensor[] = [];
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const mean = tf.mean(input, axes);
    const centred = tf.sub(input, mean);
    const variance = tf.mean(tf.square(centred), axes);
    const inverseStd = tf.rsqrt(tf.add(variance, epsilon));
    statistics = [tf.keep(mean), tf.keep(variance)];
    save([centred, inverseStd, scale]);
    return {
      // One FusedBatchNorm kernel where a per-channel product and sum are two broadcasting kernels
      // (each a pass over [B,H,W,C]); the same values within float32 rounding. tfjs's batchNorm
      // takes inputs of rank 4 at most.
      value: input.rank <= 4 ? tf.batchNorm(input, mean, variance, offset, scale, epsilon) : tf.add(tf.mul(centred, tf.mul(scale, inverseStd)), offset),
      gradFunc: (dy: tf.Tensor, [xc, inv, g]: tf.Tensor[]) => {
        const count = xc.size / xc.shape[xc.rank - 1];
        const dOffset = tf.sum(dy, axes);
        const dScale = tf.mul(tf.sum(tf.mul(dy, xc), axes), inv);
        // dx = k (dy - dOffset / n - x^ dScale / n) with k = g inv and x^ = xc inv, written as
        // dy k + xc a + b with per-channel a and b: two passes over [B,H,W,C] fewer.
        const k = tf.mul(g, inv);
        const a = tf.neg(tf.mul(k, tf.mul(inv, tf.div(dScale, count))));
        const b = tf.neg(tf.mul(k, tf.div(dOffset, count)));
        const dx = tf.add(tf.add(tf.mul(dy, k), tf.mul(xc, a)), b);
        return [dx, dScale, dOffset];
      },
    };
  });
  const y = normalise(x, gamma, beta);
  const [mean, variance] = handBack(statistics);
  return { y, mean, variance };
}
