import * as tf from '@tensorflow/tfjs-core';

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
 * Moves `moving <- moving + (batch - moving) * newBatchWeight`, with the batch's variance made
 * unbiased over the `count` values per channel it was taken from (the convention above).
 */
export function updateMovingStatistics(
  moving: { mean: MovingStatistic; variance: MovingStatistic },
  batch: { mean: tf.Tensor; variance: tf.Tensor },
  count: number,
  newBatchWeight = BN_NEW_BATCH_WEIGHT,
): void {
  tf.tidy(() => {
    const unbiased = tf.mul(batch.variance, count > 1 ? count / (count - 1) : 1);
    for (const [statistic, value] of [
      [moving.mean, batch.mean],
      [moving.variance, unbiased],
    ] as const) {
      const current = statistic.read();
      statistic.write(tf.add(current, tf.mul(tf.sub(value, current), newBatchWeight)));
    }
  });
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
 * averages; no gradient flows through them).
 *
 * The gradient is the closed form through the batch statistics,
 * `dx = gamma / sqrt(var + eps) (dy - mean(dy) - x^ mean(dy x^))`, `dgamma = sum(dy x^)`,
 * `dbeta = sum(dy)`, from the centred input saved by the forward pass, where tfjs would
 * differentiate `moments` and `batchNorm` op by op (about twice as many passes over a `[B,H,W,C]`
 * tensor).
 */
export function batchNormInTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormResult {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  let statistics: [tf.Tensor, tf.Tensor] | undefined;
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const mean = tf.mean(input, axes);
    const centred = tf.sub(input, mean);
    const variance = tf.mean(tf.square(centred), axes);
    const inverseStd = tf.rsqrt(tf.add(variance, epsilon));
    // Kept out of the op's own clean-up; handed back below as ordinary tensors.
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
  const [mean, variance] = statistics!.map((t) => {
    const copy = tf.clone(t) as tf.Tensor1D;
    t.dispose();
    return copy;
  });
  return { y, mean, variance };
}
