import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, BilinearUpSampling2D, type CommonBackboneOptions, type SegmentationBackbone, convBnRelu, defineBackbone, layerSeed, mustBe } from '@dropclass/core';
import { z } from 'zod';

export interface UNetOptions {
  /** Channels of the first level; level i has base * 2^i. Default 16. */
  base?: number;
  /** Number of down-sampling steps, 1 to 6. Default 4. */
  depth?: number;
  /** How the decoder doubles the resolution. Default 'bilinear'. */
  upsampling?: 'bilinear' | 'transposed';
  /**
   * Width of the feature map the backbone returns (what the DropClass head sees): when set, a final
   * 3x3 conv + batch norm + ReLU maps the last decoder level (`base` channels) to this many
   * channels, like the decoder / segmentation-head width of other toolkits. Default: none, the
   * feature map is the last decoder level itself.
   */
  featureChannels?: number;
  seed?: number;
  inputChannels?: number;
}

type Tensor = tfl.SymbolicTensor;

/** Builds layers with seeded initialisers, one seed per layer, so a seed fixes the whole network. */
class LayerFactory {
  private index = 0;
  constructor(private readonly seed: number) {}

  private nextSeed(): number {
    return layerSeed(this.seed, this.index++);
  }

  /** 3x3 conv + batch norm + ReLU; the conv has no bias, which the batch norm would cancel. */
  convBnRelu(x: Tensor, filters: number): Tensor {
    return convBnRelu(x, { filters, kernelSize: 3, seed: this.nextSeed() });
  }

  /** 3x3 conv + batch norm + ReLU, twice. */
  doubleConv(x: Tensor, filters: number): Tensor {
    return this.convBnRelu(this.convBnRelu(x, filters), filters);
  }

  up(x: Tensor, mode: 'bilinear' | 'transposed'): Tensor {
    if (mode === 'bilinear') return new BilinearUpSampling2D({ factor: 2 }).apply(x) as Tensor;
    const filters = x.shape[3] as number;
    return tfl.layers.conv2dTranspose({ filters, kernelSize: 2, strides: 2, kernelInitializer: tfl.initializers.heNormal({ seed: this.nextSeed() }) }).apply(x) as Tensor;
  }
}

/**
 * U-Net: per level two 3x3 conv + BN + ReLU, 2x2 max-pool down, x2 up + concatenation with the skip
 * + two 3x3 conv + BN + ReLU. Returns the last decoder feature map (base channels, full resolution),
 * or with `featureChannels` that map widened by one more 3x3 conv + BN + ReLU; the 1x1 classifier is
 * the DropClass head's. The options are checked as a run config's are (the `unet` adapter's
 * schema): a bad one throws a `BackboneOptionsError` naming it.
 */
export function createUNet(options: UNetOptions = {}): SegmentationBackbone {
  const { seed, inputChannels, ...own } = options;
  return unet.create({ ...unet.parseOptions(own), seed, inputChannels });
}

/** Builds the U-Net from options the schema has checked and completed. */
function buildUNet(options: UNetConfig & CommonBackboneOptions): SegmentationBackbone {
  const { base, depth, upsampling, featureChannels } = options;
  const inputChannels = options.inputChannels ?? 3;
  const layers = new LayerFactory(options.seed ?? 0);
  const input = tfl.input({ shape: [null, null, inputChannels], name: 'image' });
  const skips: Tensor[] = [];
  let x: Tensor = input;
  for (let level = 0; level <= depth; level++) {
    if (level > 0) x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(x) as Tensor;
    x = layers.doubleConv(x, base * 2 ** level);
    skips.push(x);
  }
  for (let level = depth - 1; level >= 0; level--) {
    x = tfl.layers.concatenate().apply([layers.up(x, upsampling), skips[level]]) as Tensor;
    x = layers.doubleConv(x, base * 2 ** level);
  }
  if (featureChannels !== undefined) x = layers.convBnRelu(x, featureChannels);
  const size = 2 ** depth;
  return {
    name: 'unet',
    model: tfl.model({ inputs: input, outputs: x, name: `unet_b${base}_d${depth}${featureChannels === undefined ? '' : `_f${featureChannels}`}` }),
    outputStride: 1,
    inputChannels,
    inputSizeMultiple: size,
    minInputSize: size,
  };
}

/** Trainable parameters of `createUNet(options)` without the classifier, by formula. */
export function unetParameterCount(options: Pick<UNetOptions, 'base' | 'depth' | 'upsampling' | 'inputChannels' | 'featureChannels'> = {}): number {
  const base = options.base ?? 16;
  const depth = options.depth ?? 4;
  const inputChannels = options.inputChannels ?? 3;
  // conv 3x3 without bias + BN gamma/beta
  const convBn = (cin: number, cout: number) => 9 * cin * cout + 2 * cout;
  const double = (cin: number, cout: number) => convBn(cin, cout) + convBn(cout, cout);
  const ch = (i: number) => base * 2 ** i;
  let total = double(inputChannels, ch(0));
  for (let i = 1; i <= depth; i++) total += double(ch(i - 1), ch(i));
  for (let i = depth - 1; i >= 0; i--) {
    if (options.upsampling === 'transposed') total += 4 * ch(i + 1) * ch(i + 1) + ch(i + 1);
    total += double(ch(i + 1) + ch(i), ch(i));
  }
  if (options.featureChannels !== undefined) total += convBn(base, options.featureChannels);
  return total;
}

/** A positive integer; every failure says "must be a positive integer, got <value>". */
function positiveInt() {
  const error = mustBe('a positive integer');
  return z.number({ error }).int({ error, abort: true }).positive({ error });
}

/**
 * The U-Net options (a run config's `backbone.options`, and `createUNet`'s), with their defaults and
 * limits: the only check of them.
 */
const unetOptionsSchema = z
  .object({
    base: positiveInt().default(16),
    depth: positiveInt()
      .max(6, { error: mustBe('at most 6') })
      .default(4),
    upsampling: z.enum(['bilinear', 'transposed'], { error: mustBe("'bilinear' or 'transposed'") }).default('bilinear'),
    featureChannels: positiveInt().optional(),
  })
  .strict();

/** U-Net options as a run config gives them, complete. */
export type UNetConfig = z.infer<typeof unetOptionsSchema>;

/**
 * The U-Net adapter, registered as `unet` when this package is imported: `base` (default 16),
 * `depth` (1 to 6, default 4), `upsampling` (`bilinear` or `transposed`, default `bilinear`),
 * `featureChannels` (default none).
 */
export const unet: BackboneAdapter<UNetConfig> = defineBackbone({
  name: 'unet',
  package: '@dropclass/backbone-unet',
  schema: unetOptionsSchema,
  create: buildUNet,
});
