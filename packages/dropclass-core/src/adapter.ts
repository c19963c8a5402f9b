import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * What a backbone gives DropClass: a tfjs-layers model from an image batch `[B,H,W,inputChannels]`
 * to the feature map `A` `[B,H/outputStride,W/outputStride,channels]` that enters the classifier.
 */
export interface SegmentationBackbone {
  /** Short name used in messages and saved metadata, e.g. `unet` or `deeplabv3-resnet18`. */
  readonly name: string;
  /** Functional model: image batch in, feature map `A` out. Its layers are trained with the head. */
  readonly model: tfl.LayersModel;
  /** Channels `C` of the feature map `A`. */
  readonly channels: number;
  /** Input size / feature-map size (1 for a decoder that returns full resolution). */
  readonly outputStride: number;
  /** Channels of the input image (3 for RGB). */
  readonly inputChannels: number;
  /** Input height and width must be multiples of this (e.g. 2^depth for a U-Net). */
  readonly inputSizeMultiple: number;
  /** The smallest input height and width the backbone accepts. */
  readonly minInputSize: number;
}

/** An adapter builds backbones from its own options; the seed makes initial weights reproducible. */
export interface BackboneAdapter<Options = Record<string, unknown>> {
  readonly name: string;
  create(options: Options & { seed?: number; inputChannels?: number }): SegmentationBackbone;
}

export type { tf };
