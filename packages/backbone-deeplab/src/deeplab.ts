import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, BackboneOptionsError, type ConvLayerConfig, type SegmentationBackbone, convBnRelu, layerSeed } from '@dropclass/core';
import { z } from 'zod';
import { AtrousConv2D, SpatialBroadcast } from './layers.js';

export type ResNetLayout = 'resnet18' | 'resnet34';

export interface DeepLabOptions {
  /** Encoder layout: basic blocks [2,2,2,2] or [3,4,6,3]. Default 'resnet18'. */
  layout?: ResNetLayout;
  /** Channel width multiplier (64, 128, 256, 512 at 1). Default 1. */
  width?: number;
  /** Input size / feature size: 16 (layer4 dilated) or 8 (layers 3 and 4 dilated). Default 16. */
  outputStride?: 8 | 16;
  /** ASPP channels; default 256 * width. */
  asppChannels?: number;
  seed?: number;
  inputChannels?: number;
}

const BLOCKS: Record<ResNetLayout, number[]> = { resnet18: [2, 2, 2, 2], resnet34: [3, 4, 6, 3] };

type Tensor = tfl.SymbolicTensor;

const atrousConv = (config: ConvLayerConfig) => new AtrousConv2D(config);

class Builder {
  private index = 0;
  constructor(private readonly seed: number) {}

  /**
   * Conv (no bias) + batch norm (+ ReLU). Every conv is an `AtrousConv2D`: padded by
   * `dilation * (kernelSize - 1) / 2` on every side, symmetrically for a stride (as torchvision's
   * ResNet), and dilated with a gradient.
   */
  convBn(x: Tensor, filters: number, kernelSize: number, { strides = 1, dilation = 1, relu = true } = {}): Tensor {
    return convBnRelu(x, { filters, kernelSize, strides, dilationRate: dilation, relu, seed: layerSeed(this.seed, this.index++), conv: atrousConv });
  }

  /** ResNet basic block: two 3x3 conv + BN, identity or 1x1 projection shortcut, ReLU after the sum. */
  basicBlock(x: Tensor, filters: number, strides: number, firstDilation: number, dilation: number): Tensor {
    const inChannels = x.shape[3];
    let y = this.convBn(x, filters, 3, { strides, dilation: firstDilation });
    y = this.convBn(y, filters, 3, { dilation, relu: false });
    const shortcut = strides !== 1 || inChannels !== filters ? this.convBn(x, filters, 1, { strides, relu: false }) : x;
    return tfl.layers.reLU().apply(tfl.layers.add().apply([y, shortcut]) as Tensor) as Tensor;
  }
}

/**
 * DeepLabV3: a ResNet-18/34 encoder with dilated later stages (output stride 16 or 8) and ASPP
 * (1x1 branch, three dilated 3x3 branches, image pooling, projection). The feature map `A` is the
 * ASPP output; the core upsamples the logits to the input size.
 */
export function createDeepLabV3(options: DeepLabOptions = {}): SegmentationBackbone {
  const layout = options.layout ?? 'resnet18';
  const width = options.width ?? 1;
  const outputStride = options.outputStride ?? 16;
  const inputChannels = options.inputChannels ?? 3;
  if (!(layout in BLOCKS)) throw new RangeError(`DeepLab layout must be resnet18 or resnet34, got ${JSON.stringify(layout)}`);
  if (outputStride !== 8 && outputStride !== 16) throw new RangeError(`DeepLab outputStride must be 8 or 16, got ${outputStride}`);
  if (!(width > 0)) throw new RangeError(`DeepLab width must be positive, got ${width}`);
  const ch = (c: number) => Math.max(4, Math.round(c * width));
  const aspp = options.asppChannels ?? ch(256);
  const b = new Builder(options.seed ?? 0);

  const input = tfl.input({ shape: [null, null, inputChannels], name: 'image' });
  let x = b.convBn(input, ch(64), 7, { strides: 2 });
  // 3x3/2 max pooling padded by 1 on every side, as torchvision's (zeros equal its -inf after a ReLU).
  x = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid' }).apply(tfl.layers.zeroPadding2d({ padding: 1 }).apply(x) as Tensor) as Tensor;
  // Stages 3 and 4 trade their stride for dilation as the output stride asks.
  const stages = [
    { filters: ch(64), stride: 1, dilate: false },
    { filters: ch(128), stride: 2, dilate: false },
    { filters: ch(256), stride: 2, dilate: outputStride === 8 },
    { filters: ch(512), stride: 2, dilate: true },
  ];
  let dilation = 1;
  stages.forEach((stage, i) => {
    const previous = dilation;
    let stride = stage.stride;
    if (stage.dilate) {
      dilation *= stride;
      stride = 1;
    }
    for (let block = 0; block < BLOCKS[layout][i]; block++) {
      x = b.basicBlock(x, stage.filters, block === 0 ? stride : 1, block === 0 ? previous : dilation, dilation);
    }
  });

  const rates = outputStride === 16 ? [6, 12, 18] : [12, 24, 36];
  const branches = [b.convBn(x, aspp, 1), ...rates.map((r) => b.convBn(x, aspp, 3, { dilation: r }))];
  const pooled = tfl.layers.reshape({ targetShape: [1, 1, x.shape[3] as number] }).apply(tfl.layers.globalAveragePooling2d({}).apply(x) as Tensor) as Tensor;
  const imagePool = new SpatialBroadcast({}).apply([b.convBn(pooled, aspp, 1), x]) as Tensor;
  const merged = tfl.layers.concatenate().apply([...branches, imagePool]) as Tensor;
  const features = b.convBn(merged, aspp, 1);

  return {
    name: `deeplabv3-${layout}`,
    model: tfl.model({ inputs: input, outputs: features, name: `deeplabv3_${layout}_os${outputStride}` }),
    outputStride,
    inputChannels,
    inputSizeMultiple: outputStride,
    minInputSize: 32,
  };
}

/** The DeepLabV3 options a run config may give (`backbone.options`), with their defaults. */
const deeplabOptionsSchema = z
  .object({
    layout: z.enum(['resnet18', 'resnet34']).default('resnet18'),
    width: z.number().positive().max(4).default(1),
    outputStride: z.union([z.literal(8), z.literal(16)]).default(16),
    asppChannels: z.number().int().positive().optional(),
  })
  .strict();

/** DeepLabV3 options as a run config gives them, complete. */
export type DeepLabConfig = z.infer<typeof deeplabOptionsSchema>;

/**
 * The DeepLabV3 adapter, registered as `deeplabv3` when this package is imported: `layout`
 * (`resnet18` or `resnet34`, default `resnet18`), `width` (multiplier up to 4, default 1),
 * `outputStride` (8 or 16, default 16), `asppChannels` (default 256 * width).
 */
export const deeplabv3: BackboneAdapter<DeepLabConfig> = {
  name: 'deeplabv3',
  package: '@dropclass/backbone-deeplab',
  defaults: deeplabOptionsSchema.parse({}),
  parseOptions(raw) {
    const result = deeplabOptionsSchema.safeParse(raw ?? {});
    if (!result.success) throw BackboneOptionsError.fromSchemaIssues('deeplabv3', result.error.issues);
    return result.data;
  },
  create: (options) => createDeepLabV3(options),
};
