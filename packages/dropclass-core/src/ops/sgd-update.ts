import * as tf from '@tensorflow/tfjs-core';
import { backendRegisters } from './fused-kernels.js';

/**
 * Name of the fused kernel a backend may register for {@link sgdUpdate}: one parameter's update in
 * one pass over its values, where tfjs ops take six.
 *
 * Inputs `{ weight, gradient, velocity? }`, float32 of one shape (no `velocity` on the first step);
 * attributes {@link SgdUpdateAttrs}. Outputs, in order, the new weight and the new velocity:
 * `d = gradient + weightDecay * weight`, `v = momentum * velocity + d` (`d` on the first step),
 * `weight - learningRate * v`.
 */
export const SGD_UPDATE_KERNEL = 'DropClassSgdUpdate';

export interface SgdUpdateAttrs extends tf.NamedAttrMap {
  learningRate: number;
  momentum: number;
  weightDecay: number;
}

/**
 * One step of SGD with momentum and weight decay for one parameter (PyTorch's `torch.optim.SGD`
 * with `dampening` 0): returns the new weight and velocity. Runs the backend's fused kernel where it
 * registers one, else tfjs ops. With momentum 0 the velocity is the decayed gradient.
 */
export function sgdUpdate(weight: tf.Tensor, gradient: tf.Tensor, velocity: tf.Tensor | undefined, attrs: SgdUpdateAttrs): { weight: tf.Tensor; velocity: tf.Tensor } {
  if (backendRegisters(SGD_UPDATE_KERNEL)) {
    const inputs: tf.NamedTensorMap = velocity ? { weight, gradient, velocity } : { weight, gradient };
    const [w, v] = tf.engine().runKernel(SGD_UPDATE_KERNEL, inputs, attrs) as tf.Tensor[];
    return { weight: w, velocity: v };
  }
  return tf.tidy(() => {
    const { learningRate, momentum, weightDecay } = attrs;
    const decayed = weightDecay === 0 ? gradient : tf.add(gradient, tf.mul(weight, weightDecay));
    const v = velocity && momentum !== 0 ? tf.add(tf.mul(velocity, momentum), decayed) : tf.clone(decayed);
    return { weight: tf.sub(weight, tf.mul(v, learningRate)), velocity: v };
  });
}
