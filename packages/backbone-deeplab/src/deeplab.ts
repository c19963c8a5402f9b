import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, type CommonBackboneOptions, type ConvLayerConfig, type SegmentationBackbone, type WeightMap, convBnRelu, defineBackbone, layerSeed, mustBe, parseBackboneOptions } from '@dropclass/core';
import { z } from 'zod';
import { AtrousConv2D, PaddedMaxPool2D, SpatialBroadcast } from './layers.js';

export type ResNetLayout = 'resnet18' | 'resnet34' | 'resnet50';

export interface ResNetOptions {
  /** Encoder layout: basic blocks [2,2,2,2] or [3,4,6,3], or bottlenecks [3,4,6,3]. Default 'resnet18'. */
  layout?: ResNetLayout;
  /** Channel width multiplier (64, 128, 256, 512 planes at 1), above 0 and at most 4. Default 1. */
  width?: number;
  /**
   * Input size / feature size: 32 (the classification network's strides), 16 (layer4 dilated) or 8
   * (layers 3 and 4 dilated, as torchvision's DeepLabV3). Default 32 for the encoder alone.
   */
  outputStride?: 8 | 16 | 32;
  seed?: number;
  inputChannels?: number;
}

export interface DeepLabOptions extends Omit<ResNetOptions, 'outputStride'> {
  /** Input size / feature size: 16 (layer4 dilated) or 8 (layers 3 and 4 dilated). Default 16. */
  outputStride?: 8 | 16;
  /** ASPP channels; default 256 * width. */
  asppChannels?: number;
  /**
   * A 3x3 conv + batch norm + ReLU after the ASPP, as torchvision's `DeepLabHead` has before its
   * classifier (needed to load torchvision's `deeplabv3_resnet50` weights). Default false.
   */
  headConv?: boolean;
}

const LAYOUTS: Record<ResNetLayout, { blocks: number[]; bottleneck: boolean }> = {
  resnet18: { blocks: [2, 2, 2, 2], bottleneck: false },
  resnet34: { blocks: [3, 4, 6, 3], bottleneck: false },
  resnet50: { blocks: [3, 4, 6, 3], bottleneck: true },
};
/** Output channels of a bottleneck block per plane (torchvision's `Bottleneck.expansion`). */
const EXPANSION = 4;

type Tensor = tfl.SymbolicTensor;

const atrousConv = (config: ConvLayerConfig) => new AtrousConv2D(config);

/**
 * Builds the network's conv + batch-norm blocks with seeded initialisers and layer names that are
 * torchvision's module paths (`layer1.0.conv1`, `layer1.0.bn1`, ...), so that its weights load by
 * name (see `torchWeights`).
 */
class Builder {
  private index = 0;
  constructor(private readonly seed: number) {}

  /**
   * Conv (no bias) + batch norm (+ ReLU), named `conv` and `norm`. Every conv is an `AtrousConv2D`:
   * padded by `dilation * (kernelSize - 1) / 2` on every side, symmetrically for a stride (as
   * torchvision's ResNet), and dilated with a gradient.
   */
  convBn(x: Tensor, filters: number, kernelSize: number, conv: string, norm: string, { strides = 1, dilation = 1, relu = true } = {}): Tensor {
    return convBnRelu(x, { filters, kernelSize, strides, dilationRate: dilation, relu, seed: layerSeed(this.seed, this.index++), conv: atrousConv, names: { conv, norm } });
  }

  /** ResNet basic block: two 3x3 conv + BN, identity or 1x1 projection shortcut, ReLU after the sum. */
  basicBlock(x: Tensor, name: string, planes: number, strides: number, firstDilation: number, dilation: number): Tensor {
    const inChannels = x.shape[3];
    let y = this.convBn(x, planes, 3, `${name}.conv1`, `${name}.bn1`, { strides, dilation: firstDilation });
    y = this.convBn(y, planes, 3, `${name}.conv2`, `${name}.bn2`, { dilation, relu: false });
    return this.residual(x, y, name, planes, strides, inChannels);
  }

  /**
   * ResNet bottleneck (torchvision's, stride on the 3x3 conv): 1x1 conv to `planes`, 3x3 conv
   * (stride, dilation), 1x1 conv to `4 * planes`, each with BN; projection shortcut where the shape
   * changes; ReLU after the sum.
   */
  bottleneck(x: Tensor, name: string, planes: number, strides: number, dilation: number): Tensor {
    const inChannels = x.shape[3];
    let y = this.convBn(x, planes, 1, `${name}.conv1`, `${name}.bn1`);
    y = this.convBn(y, planes, 3, `${name}.conv2`, `${name}.bn2`, { strides, dilation });
    y = this.convBn(y, EXPANSION * planes, 1, `${name}.conv3`, `${name}.bn3`, { relu: false });
    return this.residual(x, y, name, EXPANSION * planes, strides, inChannels);
  }

  private residual(x: Tensor, y: Tensor, name: string, channels: number, strides: number, inChannels: number | null): Tensor {
    const shortcut = strides !== 1 || inChannels !== channels ? this.convBn(x, channels, 1, `${name}.downsample.0`, `${name}.downsample.1`, { strides, relu: false }) : x;
    return tfl.layers.reLU().apply(tfl.layers.add().apply([y, shortcut]) as Tensor) as Tensor;
  }
}

/** The options of the ResNet encoder, shared by `createResNetEncoder` and the DeepLabV3 schema. */
const resnetOptions = {
  layout: z.enum(['resnet18', 'resnet34', 'resnet50'], { error: mustBe('resnet18, resnet34 or resnet50') }).default('resnet18'),
  width: z
    .number({ error: mustBe('a number above 0 and at most 4') })
    .positive({ error: mustBe('a number above 0 and at most 4') })
    .max(4, { error: mustBe('a number above 0 and at most 4') })
    .default(1),
};

/** `createResNetEncoder`'s options, with their defaults and limits: the only check of them. */
const resnetEncoderSchema = z.object({ ...resnetOptions, outputStride: z.union([z.literal(8), z.literal(16), z.literal(32)], { error: mustBe('8, 16 or 32') }).default(32) }).strict();

/** The derived sizes of a ResNet from its checked options. */
function resolveResNet(options: z.infer<typeof resnetEncoderSchema> & CommonBackboneOptions): { layout: ResNetLayout; width: number; outputStride: 8 | 16 | 32; inputChannels: number; ch: (c: number) => number } {
  const { layout, width, outputStride } = options;
  return { layout, width, outputStride, inputChannels: options.inputChannels ?? 3, ch: (c: number) => Math.max(4, Math.round(c * width)) };
}

/** The ResNet trunk (stem and layer1..layer4) on `input`: torchvision's structure and names. */
function resnetTrunk(b: Builder, input: Tensor, options: ReturnType<typeof resolveResNet>): Tensor {
  const { layout, outputStride, ch } = options;
  const { blocks, bottleneck } = LAYOUTS[layout];
  let x = b.convBn(input, ch(64), 7, 'conv1', 'bn1', { strides: 2 });
  // 3x3/2 max pooling padded by 1 on every side, as torchvision's.
  x = new PaddedMaxPool2D({ poolSize: 3, strides: 2, padding: 1 }).apply(x) as Tensor;
  // Stages 3 and 4 trade their stride for dilation as the output stride asks (torchvision's replace_stride_with_dilation).
  const stages = [
    { planes: ch(64), stride: 1, dilate: false },
    { planes: ch(128), stride: 2, dilate: false },
    { planes: ch(256), stride: 2, dilate: outputStride === 8 },
    { planes: ch(512), stride: 2, dilate: outputStride !== 32 },
  ];
  let dilation = 1;
  stages.forEach((stage, i) => {
    const previous = dilation;
    let stride = stage.stride;
    if (stage.dilate) {
      dilation *= stride;
      stride = 1;
    }
    for (let block = 0; block < blocks[i]; block++) {
      const name = `layer${i + 1}.${block}`;
      const first = block === 0;
      x = bottleneck
        ? b.bottleneck(x, name, stage.planes, first ? stride : 1, first ? previous : dilation)
        : b.basicBlock(x, name, stage.planes, first ? stride : 1, first ? previous : dilation, dilation);
    }
  });
  return x;
}

/**
 * A ResNet encoder alone (torchvision's `resnet18/34/50` without `avgpool` and `fc`): image ->
 * layer4's feature map, at output stride 32, or 16/8 with dilated later stages. Its layers carry
 * torchvision's names, so torchvision's and timm's ImageNet weights load into it by name
 * (`deeplabv3.torchWeights`). For plugin authors who build another decoder on a ResNet. A bad
 * option throws a `BackboneOptionsError` (for `resnet-encoder`) naming it.
 */
export function createResNetEncoder(options: ResNetOptions = {}): tfl.LayersModel {
  const { seed, inputChannels, ...own } = options;
  const resolved = resolveResNet({ ...parseBackboneOptions('resnet-encoder', resnetEncoderSchema, own), inputChannels });
  const input = tfl.input({ shape: [null, null, resolved.inputChannels], name: 'image' });
  const output = resnetTrunk(new Builder(seed ?? 0), input, resolved);
  return tfl.model({ inputs: input, outputs: output, name: `${resolved.layout}_os${resolved.outputStride}` });
}

/**
 * DeepLabV3: a ResNet-18/34/50 encoder with dilated later stages (output stride 16 or 8) and ASPP
 * (1x1 branch, three dilated 3x3 branches, image pooling, projection), optionally followed by
 * torchvision's 3x3 head conv. The feature map `A` is the last of these; the core upsamples the
 * logits to the input size. Layers are named as in torchvision's `deeplabv3_resnet50`, with the
 * ASPP as `aspp.*` and the head conv as `head.0`/`head.1`. The options are checked as a run
 * config's are (the `deeplabv3` adapter's schema): a bad one throws a `BackboneOptionsError` naming it.
 */
export function createDeepLabV3(options: DeepLabOptions = {}): SegmentationBackbone {
  const { seed, inputChannels, ...own } = options;
  return deeplabv3.create({ ...deeplabv3.parseOptions(own), seed, inputChannels });
}

/** Builds DeepLabV3 from options the schema has checked and completed. */
function buildDeepLabV3(options: DeepLabConfig & CommonBackboneOptions): SegmentationBackbone {
  const { outputStride } = options;
  const resolved = resolveResNet(options);
  const { layout, inputChannels, ch } = resolved;
  const aspp = options.asppChannels ?? ch(256);
  const b = new Builder(options.seed ?? 0);

  const input = tfl.input({ shape: [null, null, inputChannels], name: 'image' });
  const x = resnetTrunk(b, input, resolved);
  const rates = outputStride === 16 ? [6, 12, 18] : [12, 24, 36];
  const branches = [b.convBn(x, aspp, 1, 'aspp.convs.0.0', 'aspp.convs.0.1'), ...rates.map((r, i) => b.convBn(x, aspp, 3, `aspp.convs.${i + 1}.0`, `aspp.convs.${i + 1}.1`, { dilation: r }))];
  const pooled = tfl.layers.reshape({ targetShape: [1, 1, x.shape[3] as number] }).apply(tfl.layers.globalAveragePooling2d({}).apply(x) as Tensor) as Tensor;
  const imagePool = new SpatialBroadcast({}).apply([b.convBn(pooled, aspp, 1, 'aspp.convs.4.1', 'aspp.convs.4.2'), x]) as Tensor;
  const merged = tfl.layers.concatenate().apply([...branches, imagePool]) as Tensor;
  let features = b.convBn(merged, aspp, 1, 'aspp.project.0', 'aspp.project.1');
  if (options.headConv) features = b.convBn(features, aspp, 3, 'head.0', 'head.1');

  return {
    name: `deeplabv3-${layout}`,
    model: tfl.model({ inputs: input, outputs: features, name: `deeplabv3_${layout}_os${outputStride}` }),
    outputStride,
    inputChannels,
    inputSizeMultiple: outputStride,
    minInputSize: 32,
  };
}

/** Keys of a torchvision/timm ResNet that the encoder holds (`fc.*`, the ImageNet classifier, excepted). */
const isEncoderKey = (key: string) => /^(conv1|bn1|layer[1-4])\./.test(key);

/**
 * How torchvision's and timm's weight files go onto a DeepLabV3 backbone's keys:
 * - an ImageNet ResNet (`conv1.weight`, `layer1.0.bn1.running_var`, ..., `fc.*` ignored): fills
 *   the encoder only; the ASPP, the head conv and the classifier start afresh;
 * - torchvision's DeepLabV3 (`backbone.*`, `classifier.0.*` the ASPP, `classifier.1/2` the head
 *   conv, `classifier.4` the classifier; `aux_classifier.*` ignored): fills everything.
 * `num_batches_tracked` is ignored in both.
 */
export function torchvisionWeightMap(fileKeys: readonly string[]): WeightMap {
  const segmentation = fileKeys.some((k) => k.startsWith('backbone.'));
  if (segmentation) {
    return {
      description: "torchvision's DeepLabV3",
      translate(key) {
        if (key.endsWith('.num_batches_tracked') || key.startsWith('aux_classifier.')) return null;
        if (key.startsWith('backbone.')) return key.slice('backbone.'.length);
        const head: [string, string][] = [
          ['classifier.0.', 'aspp.'],
          ['classifier.1.', 'head.0.'],
          ['classifier.2.', 'head.1.'],
          ['classifier.4.', 'dropclass_head.classifier.'],
        ];
        const match = head.find(([from]) => key.startsWith(from));
        return match ? match[1] + key.slice(match[0].length) : undefined;
      },
      covers: (key) => !key.startsWith('dropclass_head.selection.') && !key.startsWith('dropclass_head.bn.'),
    };
  }
  if (!fileKeys.some((k) => k.startsWith('layer1.'))) {
    const sample = fileKeys.slice(0, 4).join(', ');
    throw new Error(
      `the file is neither a torchvision/timm ResNet (keys conv1.weight, layer1.0.conv1.weight, ...) nor torchvision's DeepLabV3 (keys backbone.*, classifier.*); its keys begin ${sample || '(none)'}`,
    );
  }
  return {
    description: 'torchvision/timm ResNet (encoder only)',
    translate: (key) => (key.endsWith('.num_batches_tracked') || key.startsWith('fc.') ? null : isEncoderKey(key) ? key : undefined),
    covers: isEncoderKey,
  };
}

/**
 * The DeepLabV3 options (a run config's `backbone.options`, and `createDeepLabV3`'s), with their
 * defaults and limits: the only check of them.
 */
const deeplabOptionsSchema = z
  .object({
    ...resnetOptions,
    outputStride: z.union([z.literal(8), z.literal(16)], { error: mustBe('8 or 16') }).default(16),
    asppChannels: z
      .number({ error: mustBe('a positive integer') })
      .int({ error: mustBe('a positive integer'), abort: true })
      .positive({ error: mustBe('a positive integer') })
      .optional(),
    headConv: z.boolean({ error: mustBe('true or false') }).default(false),
  })
  .strict();

/** DeepLabV3 options as a run config gives them, complete. */
export type DeepLabConfig = z.infer<typeof deeplabOptionsSchema>;

/**
 * The DeepLabV3 adapter, registered as `deeplabv3` when this package is imported: `layout`
 * (`resnet18`, `resnet34` or `resnet50`, default `resnet18`), `width` (multiplier up to 4, default 1),
 * `outputStride` (8 or 16, default 16), `asppChannels` (default 256 * width), `headConv` (default
 * false). Reads torchvision's and timm's weight files (`torchvisionWeightMap`).
 */
export const deeplabv3: BackboneAdapter<DeepLabConfig> = defineBackbone({
  name: 'deeplabv3',
  package: '@dropclass/backbone-deeplab',
  schema: deeplabOptionsSchema,
  create: buildDeepLabV3,
  torchWeights: (fileKeys) => torchvisionWeightMap(fileKeys),
});
