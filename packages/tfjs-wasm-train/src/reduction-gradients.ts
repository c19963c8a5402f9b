import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradients of Sum and Mean that spread `dy` over the input with a broadcasting multiply by a
 * filled tensor. tfjs's own multiplies by `ones(x.shape)`, an array the size of the input filled in
 * JavaScript and uploaded at every call; the values are the same.
 */
function reductionGradient(kernelName: typeof tf.Sum | typeof tf.Mean): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs | tf.MeanAttrs).axis, x.shape);
      const keptShape = x.shape.map((size, axis) => (axes.includes(axis) ? 1 : size));
      const reduceSize = axes.reduce((n, axis) => n * x.shape[axis], 1);
      const scale = kernelName === tf.Mean ? 1 / reduceSize : 1;
      return { x: () => tf.mul(tf.reshape(dy as tf.Tensor, keptShape), tf.fill(x.shape, scale)) };
    },
  };
}

export const sumGradient = reductionGradient(tf.Sum);
export const meanGradient = reductionGradient(tf.Mean);
