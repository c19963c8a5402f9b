import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions; tfjs-layers registers all of them on import.
import '@tensorflow/tfjs-layers';
import { batchNormGradient } from './batchnorm-gradient.js';

tf.registerGradient(batchNormGradient);
