import * as tf from '@tensorflow/tfjs-core';
import { backendRegisters } from './fused-kernels.js';

/**
 * Name of the fused forward kernel a backend may register for {@link softmaxLosses}.
 *
 * Inputs `{ logits, labels? }`: float32 `[N, K]` and int32 `[N]`; attributes {@link SoftmaxLossesAttrs}.
 * Outputs, in order:
 * - `losses`, float32 `[2]`: the cross-entropy and the suppression term, as {@link softmaxLosses}
 *   defines them;
 * - `probabilities`, float32 `[N, K]`: the softmax of each row;
 * - `count`, float32 `[1]`: the number of pixels the cross-entropy counted.
 */
export const SOFTMAX_LOSSES_KERNEL = 'DropClassSoftmaxLosses';

/**
 * Name of the fused gradient kernel that goes with {@link SOFTMAX_LOSSES_KERNEL}.
 *
 * Inputs `{ probabilities, labels?, count, dy }`: the forward kernel's outputs, its labels, and
 * `dy` float32 `[2]`, the gradient of the two losses. Output: the gradient of the logits `[N, K]`,
 * `wCe (p - onehot(label)) [pixel counted] + wSup p_z (onehot(z) - p)` with
 * `wCe = dy[0] / max(count, 1)`, `wSup = dy[1] / N`, `z` the suppressed class (no term when -1).
 */
export const SOFTMAX_LOSSES_GRAD_KERNEL = 'DropClassSoftmaxLossesGrad';

export interface SoftmaxLossesAttrs extends tf.NamedAttrMap {
  /** Label of pixels without a class. */
  ignoreIndex: number;
  /** A class whose pixels the cross-entropy leaves out too (the dropped class of `CE_drop`); -1 for none. */
  excludedClass: number;
  /** Class `z` of the suppression term; -1 for none. */
  suppressedClass: number;
}

/** One way of computing the op: forward returns `[crossEntropy, suppression]` and what backward needs. */
interface Implementation {
  forward(logits: tf.Tensor2D, labels: tf.Tensor1D | undefined, attrs: SoftmaxLossesAttrs): { losses: tf.Tensor1D; saved: tf.Tensor[] };
  backward(dy: tf.Tensor1D, saved: tf.Tensor[], hasLabels: boolean, attrs: SoftmaxLossesAttrs): tf.Tensor;
}

/** The backend's fused kernels (see {@link SOFTMAX_LOSSES_KERNEL}). */
const fused: Implementation = {
  forward(logits, labels, attrs) {
    const inputs: tf.NamedTensorMap = labels ? { logits, labels } : { logits };
    const [losses, probabilities, count] = tf.engine().runKernel(SOFTMAX_LOSSES_KERNEL, inputs, attrs) as tf.Tensor[];
    return { losses: losses as tf.Tensor1D, saved: labels ? [probabilities, count, labels] : [probabilities, count] };
  },
  backward(dy, [probabilities, count, labels], hasLabels, attrs) {
    const inputs: tf.NamedTensorMap = hasLabels ? { probabilities, labels, count, dy } : { probabilities, count, dy };
    return tf.engine().runKernel(SOFTMAX_LOSSES_GRAD_KERNEL, inputs, attrs) as tf.Tensor;
  },
};

/** Any backend: tfjs ops. */
const composite: Implementation = {
  forward(logits, labels, { ignoreIndex, excludedClass, suppressedClass }) {
    const [n, k] = logits.shape;
    const p = tf.softmax(logits);
    let crossEntropy: tf.Tensor = tf.scalar(0);
    let count: tf.Tensor = tf.scalar(0);
    const saved: tf.Tensor[] = [p];
    if (labels) {
      const counted = tf.logicalAnd(
        tf.logicalAnd(tf.greaterEqual(labels, tf.scalar(0, 'int32')), tf.less(labels, tf.scalar(k, 'int32'))),
        tf.logicalAnd(tf.notEqual(labels, tf.scalar(ignoreIndex, 'int32')), tf.notEqual(labels, tf.scalar(excludedClass, 'int32'))),
      );
      // A pixel left out gets a one-hot row of zeros (index -1).
      const picks = tf.oneHot(tf.where(counted, labels, tf.fill([n], -1, 'int32')), k);
      const weights = tf.cast(counted, 'float32');
      // -log p[label] = log(sum exp x) - x[label], with log(sum exp x) = max(x) - log(max(p)).
      const logSumExp = tf.sub(tf.max(logits, 1), tf.log(tf.max(p, 1)));
      count = tf.sum(weights);
      crossEntropy = tf.div(tf.sub(tf.sum(tf.mul(logSumExp, weights)), tf.sum(tf.mul(logits, picks))), tf.maximum(count, 1));
      saved.push(picks, tf.reshape(weights, [n, 1]));
    }
    let suppression: tf.Tensor = tf.scalar(0);
    if (suppressedClass >= 0) {
      // Column z as [N, 1]: a product with the one-hot column e_z, which wasm runs far faster than a strided slice.
      const pz = tf.matMul(p, tf.reshape(tf.oneHot(tf.tensor1d([suppressedClass], 'int32'), k), [k, 1]));
      suppression = tf.div(tf.sum(pz), Math.max(n, 1));
      saved.push(pz);
    }
    return { losses: tf.stack([crossEntropy, suppression]) as tf.Tensor1D, saved: [...saved, count] };
  },
  backward(dy, saved, hasLabels, { suppressedClass }) {
    const p = saved[0];
    const [n, k] = p.shape;
    const count = saved[saved.length - 1];
    let coefficient: tf.Tensor | undefined;
    let gradient: tf.Tensor | undefined;
    if (hasLabels) {
      const [picks, weights] = saved.slice(1, 3);
      const wCe = tf.div(component(dy, 0), tf.maximum(count, 1));
      coefficient = tf.mul(weights, wCe);
      gradient = tf.neg(tf.mul(picks, wCe));
    }
    if (suppressedClass >= 0) {
      const pz = saved[hasLabels ? 3 : 1];
      const scaled = tf.mul(pz, tf.div(component(dy, 1), Math.max(n, 1)));
      coefficient = coefficient ? tf.sub(coefficient, scaled) : tf.neg(scaled);
      const toZ = tf.mul(scaled, tf.reshape(tf.oneHot(tf.tensor1d([suppressedClass], 'int32'), k), [1, k]));
      gradient = gradient ? tf.add(gradient, toZ) : toZ;
    }
    if (!coefficient || !gradient) return tf.zerosLike(p);
    return tf.add(tf.mul(p, coefficient), gradient);
  },
};

/**
 * Component `i` of a `[2]` vector as a scalar: a product with `e_i`, where wasm's `Slice` kernel (and
 * `Unpack`, made of it) reads the tensor back to JavaScript.
 */
export function component(values: tf.Tensor, i: number): tf.Scalar {
  return tf.dot(values, tf.tensor1d(i === 0 ? [1, 0] : [0, 1])) as tf.Scalar;
}

/**
 * The objective's softmax terms over logits `[..., K]` in one op, as `[crossEntropy, suppression]`:
 * - `crossEntropy`: the mean of `-log softmax(logits)[label]` over the pixels whose label is a class
 *   (0..K-1) other than `ignoreIndex` and `excludedClass`; 0 when no pixel counts, or when
 *   `labels` (the logits' shape without the last axis) is omitted;
 * - `suppression`: the mean over all pixels of `softmax(logits)[suppressedClass]`; 0 when
 *   `suppressedClass` is -1.
 *
 * The gradient is the closed form, one pass over the logits. A backend that registers
 * {@link SOFTMAX_LOSSES_KERNEL} and {@link SOFTMAX_LOSSES_GRAD_KERNEL} runs both as one kernel
 * each; elsewhere it is a composite of tfjs ops.
 */
export function softmaxLosses(logits: tf.Tensor, labels: tf.Tensor | undefined, attrs: SoftmaxLossesAttrs): tf.Tensor1D {
  const k = logits.shape[logits.rank - 1];
  const n = logits.size / Math.max(k, 1);
  if (labels && labels.size !== n) {
    throw new Error(`softmaxLosses (ops/softmax-losses.ts): labels [${labels.shape.join(', ')}] do not match logits [${logits.shape.join(', ')}] without the class axis`);
  }
  const { suppressedClass } = attrs;
  if (!Number.isInteger(suppressedClass) || suppressedClass < -1 || suppressedClass >= k) {
    throw new RangeError(`softmaxLosses (ops/softmax-losses.ts): suppressedClass ${suppressedClass} is not a class of these ${k}-class logits; give an integer in 0..${k - 1}, or -1 for none`);
  }
  const implementation = backendRegisters(SOFTMAX_LOSSES_KERNEL, SOFTMAX_LOSSES_GRAD_KERNEL) ? fused : composite;
  const flatLabels = labels ? (tf.reshape(labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32'), [n]) as tf.Tensor1D) : undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const { losses, saved } = implementation.forward(x, flatLabels, attrs);
    save(saved);
    return {
      value: losses,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => implementation.backward(dy as tf.Tensor1D, kept, flatLabels !== undefined, attrs),
    };
  });
  return op(tf.reshape(logits, [n, k])) as tf.Tensor1D;
}
