import * as tfl from '@tensorflow/tfjs-layers';
import type { SegmentationBackbone } from '../adapter.js';
import { layerSeed } from '../rng.js';
import { runConformanceSuite } from './index.js';

/** The smallest backbone that exercises everything: two conv+BN+ReLU blocks, the second with stride 2. */
function tinyBackbone(seed: number): SegmentationBackbone {
  const input = tfl.input({ shape: [null, null, 3] });
  let x = input;
  for (const [i, strides] of [1, 2].entries()) {
    x = tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides, padding: 'same', kernelInitializer: tfl.initializers.heNormal({ seed: layerSeed(seed, i) }) }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  }
  return {
    name: 'tiny',
    model: tfl.model({ inputs: input, outputs: x }),
    outputStride: 2,
    inputChannels: 3,
    inputSizeMultiple: 2,
    minInputSize: 2,
  };
}

runConformanceSuite({ name: 'tiny conv net', createBackbone: tinyBackbone, inputSize: [8, 10] });
