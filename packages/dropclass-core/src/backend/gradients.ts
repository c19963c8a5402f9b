import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions; tfjs-layers registers the stock ones on import,
// so it is loaded before ours replace three of them.
import '@tensorflow/tfjs-layers';
import { batchNormGradient } from './batchnorm-gradient.js';
import { meanGradient, sumGradient } from './reduction-gradients.js';

/** The gradients `registerDropClassGradients()` puts in place of tfjs's own (same values, faster). */
export const DROPCLASS_GRADIENTS: readonly tf.GradConfig[] = [batchNormGradient, sumGradient, meanGradient];

let registered = false;

/**
 * Replaces tfjs's gradients of `FusedBatchNorm`, `Sum` and `Mean`, on every backend, by ones with
 * the same values that broadcast instead of tiling or filling input-sized arrays. Importing this
 * package changes nothing in tfjs; `initBackend()` calls this. Idempotent.
 */
export function registerDropClassGradients(): void {
  if (registered) return;
  for (const gradient of DROPCLASS_GRADIENTS) tf.registerGradient(gradient);
  registered = true;
}
