import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationBackbone } from '../adapter.js';
import { DropClassModel } from './model.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

function backboneOf(model: tfl.LayersModel): SegmentationBackbone {
  return { name: 'probe', model, outputStride: 1, inputChannels: 3, inputSizeMultiple: 1, minInputSize: 1 };
}

function convBackbone(outputChannels: number): SegmentationBackbone {
  const input = tfl.input({ shape: [null, null, 3] });
  const conv = tfl.layers.conv2d({ filters: outputChannels, kernelSize: 1 });
  return backboneOf(tfl.model({ inputs: input, outputs: conv.apply(input) as tfl.SymbolicTensor }));
}

describe('DropClassModel.create', () => {
  beforeAll(() => useCpuBackend());

  it('reads the feature channels from the backbone model\'s output shape: head, saved info and logits follow them', () => {
    const model = DropClassModel.create(convBackbone(5), { numClasses: 3 });
    expect(model.info.backbone.channels).toBe(5);
    expect(model.head.kernel.shape).toEqual([5, 3]);
    expect(model.head.selection.kernel.shape).toEqual([5, 5]);
    const images = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
    const logits = model.predictLogits(images);
    expect(logits.shape).toEqual([1, 4, 4, 3]);
    tf.dispose([images, logits]);
    model.dispose();
  });

  it('refuses a backbone model whose channel count is unknown, saying what it outputs and what is needed', () => {
    const input = tfl.input({ shape: [null, null, null] });
    const backbone = backboneOf(tfl.model({ inputs: input, outputs: tfl.layers.reLU().apply(input) as tfl.SymbolicTensor }));
    expect(() => DropClassModel.create(backbone, { numClasses: 3 })).toThrow(
      "the probe backbone's model outputs [null, null, null, null]; it must output a feature map [B, H, W, C] whose channel count C is known",
    );
    backbone.model.dispose();
  });

  it('refuses a backbone model with two outputs, or one that is not a 4-d feature map', () => {
    const input = tfl.input({ shape: [null, null, 3] });
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input) as tfl.SymbolicTensor;
    const two = backboneOf(tfl.model({ inputs: input, outputs: [a, b] }));
    expect(() => DropClassModel.create(two, { numClasses: 3 })).toThrow(
      "the probe backbone's model has 2 outputs ([null, null, null, 4], [null, null, null, 2]); it must output one feature map [B, H, W, C]",
    );
    const flat = tfl.input({ shape: [6] });
    const dense = backboneOf(tfl.model({ inputs: flat, outputs: tfl.layers.dense({ units: 4 }).apply(flat) as tfl.SymbolicTensor }));
    expect(() => DropClassModel.create(dense, { numClasses: 3 })).toThrow("the probe backbone's model outputs [null, 4]; it must output a feature map [B, H, W, C]");
    two.model.dispose();
    dense.model.dispose();
  });
});
