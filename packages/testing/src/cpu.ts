// The helpers of `@dropclass/testing` for tests that run on tfjs's cpu backend with tfjs's stock
// gradients: importing this module loads tfjs-backend-cpu and tfjs-layers (which registers them).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';

export { expectClose, randomValues } from './index.js';

/**
 * Runs the test file on tfjs's cpu backend with tfjs's stock gradients (tfjs-layers registers
 * them): the package needs no backend of its own, and no gradient other packages register.
 */
export async function useCpuBackend(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}
