import * as tf from '@tensorflow/tfjs-core';

/** Marks "no class dropped" wherever a dropped class index is expected. */
export const NO_CLASS_DROPPED = -1;

/**
 * Class importance `S` `[C,K]`: column c is `relu(W[:, c])`, the Grad-CAM weight of class c for a
 * 1x1 classifier. Not detached: the gradient reaches the classifier through it.
 */
export function classImportance(classifierKernel: tf.Tensor2D): tf.Tensor2D {
  return tf.relu(classifierKernel);
}

/** Class-specific features `A_c = A * S_c` of class c, broadcast over batch and space. */
export function classSpecificFeatures(features: tf.Tensor4D, classifierKernel: tf.Tensor2D, classIndex: number): tf.Tensor4D {
  const numClasses = classifierKernel.shape[1];
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= numClasses) {
    throw new RangeError(`classSpecificFeatures (dropclass/importance.ts): class index ${classIndex} is not a class of this ${numClasses}-class classifier; give an integer in 0..${numClasses - 1}`);
  }
  return tf.tidy(() => {
    const column = tf.reshape(tf.slice(classImportance(classifierKernel), [0, classIndex], [-1, 1]), [-1]);
    return tf.mul(features, column);
  });
}

/**
 * Averaged importance `s` `[C]` over the kept classes: every class but `droppedClass`, or all of them
 * when nothing is dropped (`NO_CLASS_DROPPED`).
 */
export function averagedImportance(classifierKernel: tf.Tensor2D, droppedClass: number): tf.Tensor1D {
  const numClasses = classifierKernel.shape[1];
  if (droppedClass !== NO_CLASS_DROPPED && (droppedClass < 0 || droppedClass >= numClasses || !Number.isInteger(droppedClass))) {
    throw new RangeError(`dropped class ${droppedClass} is not a class index in 0..${numClasses - 1} (use ${NO_CLASS_DROPPED} to drop nothing)`);
  }
  return tf.tidy(() => {
    const keep = new Float32Array(numClasses).fill(1);
    if (droppedClass !== NO_CLASS_DROPPED) keep[droppedClass] = 0;
    const kept = numClasses - (droppedClass === NO_CLASS_DROPPED ? 0 : 1);
    const weights = tf.tensor2d(keep.map((k) => k / kept), [numClasses, 1]);
    return tf.reshape(tf.matMul(classImportance(classifierKernel), weights), [-1]) as tf.Tensor1D;
  });
}
