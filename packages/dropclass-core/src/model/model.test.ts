import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDropClassModel } from './model.js';
import { useCpuBackend } from '../testing.js';

function backboneWith(outputChannels: number, declared: number) {
  const input = tfl.input({ shape: [null, null, 3] });
  const conv = tfl.layers.conv2d({ filters: outputChannels, kernelSize: 1 });
  return {
    name: 'probe',
    model: tfl.model({ inputs: input, outputs: conv.apply(input) as tfl.SymbolicTensor }),
    channels: declared,
    outputStride: 1,
    inputChannels: 3,
    inputSizeMultiple: 1,
    minInputSize: 1,
  };
}

describe('createDropClassModel', () => {
  beforeAll(() => useCpuBackend());

  it('refuses a backbone whose feature map has other channels than it declares, saying which is which and what to change', () => {
    const backbone = backboneWith(5, 4);
    expect(() => createDropClassModel(backbone, { numClasses: 3 })).toThrow(
      'the probe backbone declares channels: 4 but its model outputs [null, null, null, 5], 5 channels; declare channels: 5, or make the model output 4 channels',
    );
    backbone.model.dispose();
  });
});
