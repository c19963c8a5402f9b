import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions; tfjs-layers registers all of them on import.
import '@tensorflow/tfjs-layers';
import { batchNormGradient } from './batchnorm-gradient.js';
import { meanGradient, sumGradient } from './reduction-gradients.js';

for (const gradient of [batchNormGradient, sumGradient, meanGradient]) tf.registerGradient(gradient);
