import * as tf from '@tensorflow/tfjs-core';

/** Whether the current backend registers every one of these kernels (an op's fused forward and gradient). */
export function backendRegisters(...kernelNames: string[]): boolean {
  const backend = tf.getBackend();
  return kernelNames.every((name) => tf.getKernel(name, backend) !== undefined);
}
