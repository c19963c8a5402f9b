import * as tf from '@tensorflow/tfjs-core';

/**
 * The gradient of FusedBatchNorm (tf.batchNorm) with broadcasting where tfjs's own tiles the
 * per-channel scale to the input's full size first: the same values, without a `[B,H,W,C]` Tile.
 */
export const batchNormGradient: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy, saved, attrs) => {
    const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
    const [x, mean, variance, scale] = saved;
    const gradient = dy as tf.Tensor;
    const scaleValue = scale ?? tf.scalar(1);
    const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const reduce = (t: tf.Tensor) => tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, mean.shape);
    const inverseStd = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    const centred = tf.sub(x, mean);
    const scaledGradient = tf.mul(gradient, scaleValue);
    return {
      x: () => tf.mul(scaledGradient, inverseStd),
      mean: () => reduce(tf.neg(tf.mul(scaledGradient, inverseStd))),
      variance: () => reduce(tf.mul(tf.mul(scaledGradient, centred), tf.mul(tf.pow(inverseStd, 3), -0.5))),
      scale: () => reduce(tf.mul(gradient, tf.mul(centred, inverseStd))),
      offset: () => reduce(gradient),
    };
  },
};
