import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, type SegmentationBackbone, batchNormalization, layerSeed } from '@dropclass/core';

export interface UNetOptions {
  /** Channels of the first level; level i has base * 2^i. Default 16. */
  base?: number;
  /** Number of down-sampling steps. Default 4. */
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

  private initializer() {
    return tfl.initializers.heNormal({ seed: layerSeed(this.seed, this.index++) });
  }

  /** 3x3 conv + batch norm + ReLU (PyTorch's BatchNorm2d defaults: momentum 0.1, epsilon 1e-5). */
  convBnRelu(x: Tensor, filters: number): Tensor {
    x = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', kernelInitializer: this.initializer() }).apply(x) as Tensor;
    x = batchNormalization({ momentum: 0.9, epsilon: 1e-5 }).apply(x) as Tensor;
    return tfl.layers.reLU().apply(x) as Tensor;
  }

  /** 3x3 conv + batch norm + ReLU, twice. */
  doubleConv(x: Tensor, filters: number): Tensor {
    return this.convBnRelu(this.convBnRelu(x, filters), filters);
  }

  up(x: Tensor, mode: 'bilinear' | 'transposed'): Tensor {
    if (mode === 'bilinear') return tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }).apply(x) as Tensor;
    const filters = x.shape[3] as number;
    return tfl.layers.conv2dTranspose({ filters, kernelSize: 2, strides: 2, kernelInitializer: this.initializer() }).apply(x) as Tensor;
  }
}

/**
 * U-Net: per level two 3x3 conv + BN + ReLU, 2x2 max-pool down, x2 up + concatenation with the skip
 * + two 3x3 conv + BN + ReLU. Returns the last decoder feature map (base channels, full resolution),
 * or with `featureChannels` that map widened by one more 3x3 conv + BN + ReLU; the 1x1 classifier is
 * the DropClass head's.
 */
export function createUNet(options: UNetOptions = {}): SegmentationBackbone {
  const base = options.base ?? 16;
  const depth = options.depth ?? 4;
  const upsampling = options.upsampling ?? 'bilinear';
  const inputChannels = options.inputChannels ?? 3;
  const featureChannels = options.featureChannels;
  const checked: [string, number][] = [['base', base], ['depth', depth], ['inputChannels', inputChannels]];
  if (featureChannels !== undefined) checked.push(['featureChannels', featureChannels]);
  for (const [name, value] of checked) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`U-Net option ${name} must be a positive integer, got ${value}`);
  }
  if (upsampling !== 'bilinear' && upsampling !== 'transposed') {
    throw new RangeError(`U-Net option upsampling must be 'bilinear' or 'transposed', got ${JSON.stringify(upsampling)}`);
  }
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
    channels: featureChannels ?? base,
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
  // conv 3x3 with bias + BN gamma/beta
  const convBn = (cin: number, cout: number) => 9 * cin * cout + cout + 2 * cout;
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

export const unet: BackboneAdapter<UNetOptions> = { name: 'unet', create: (options) => createUNet(options) };
