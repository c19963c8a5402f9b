import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, type SegmentationBackbone, layerSeed } from '@dropclass/core';

export interface PlainFcnOptions {
  /** Channels of every conv layer. */
  width?: number;
  /** Conv + BN + ReLU layers after the stride-2 stem. */
  layers?: number;
  seed?: number;
  inputChannels?: number;
}

/**
 * A plain fully convolutional net: a stride-2 3x3 conv stem, then `layers` 3x3 conv + batch norm +
 * ReLU at half resolution. Its last feature map is what DropClass classifies.
 */
export function createPlainFcn(options: PlainFcnOptions = {}): SegmentationBackbone {
  const width = options.width ?? 16;
  const inputChannels = options.inputChannels ?? 3;
  let index = 0;
  const block = (x: tfl.SymbolicTensor, strides: number) => {
    const conv = tfl.layers.conv2d({ filters: width, kernelSize: 3, strides, padding: 'same', kernelInitializer: tfl.initializers.heNormal({ seed: layerSeed(options.seed ?? 0, index++) }) });
    const normed = tfl.layers.batchNormalization().apply(conv.apply(x)) as tfl.SymbolicTensor;
    return tfl.layers.reLU().apply(normed) as tfl.SymbolicTensor;
  };
  const input = tfl.input({ shape: [null, null, inputChannels] });
  let x = block(input, 2);
  for (let i = 0; i < (options.layers ?? 3); i++) x = block(x, 1);
  return {
    name: 'plain-fcn',
    model: tfl.model({ inputs: input, outputs: x }),
    channels: width,
    outputStride: 2,
    inputChannels,
    // the stride-2 stem halves the size: odd sizes would not map back onto the labels
    inputSizeMultiple: 2,
    minInputSize: 2,
  };
}

export const plainFcn: BackboneAdapter<PlainFcnOptions> = { name: 'plain-fcn', create: (options) => createPlainFcn(options) };
