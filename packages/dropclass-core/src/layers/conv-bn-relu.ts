import * as tfl from '@tensorflow/tfjs-layers';
import { batchNormalization } from './batch-norm.js';

/** The bias-free convolution {@link convBnRelu} asks its `conv` option to build. */
export interface ConvLayerConfig {
  filters: number;
  kernelSize: number;
  strides: number;
  dilationRate: number;
  /** Always false: the batch norm that follows cancels a bias, and its `beta` takes the bias's place. */
  useBias: false;
  /** Seed of the kernel's He-normal initialiser; undefined leaves it unseeded. */
  seed?: number;
  /** The layer's name, when the block is given names. */
  name?: string;
}

/** Options of {@link convBnRelu}. */
export interface ConvBnReluOptions {
  /** Output channels of the conv. */
  filters: number;
  /** Square kernel size. */
  kernelSize: number;
  /** Default 1. */
  strides?: number;
  /** Default 1. */
  dilationRate?: number;
  /**
   * Seed of the conv kernel's He-normal initialiser: give each layer its own, e.g.
   * `layerSeed(seed, index++)`, so that one seed fixes the whole network.
   */
  seed?: number;
  /** Default true; false stops after the batch norm (e.g. the last conv of a residual branch). */
  relu?: boolean;
  /**
   * Names of the conv and batch-norm layers. PyTorch module paths (`{ conv: 'layer1.0.conv1', norm:
   * 'layer1.0.bn1' }`) let a model read torchvision's weights by name (see `namedWeights`).
   * Default: tfjs's automatic names.
   */
  names?: { conv: string; norm: string };
  /** Batch norm momentum (tfjs-layers' convention: weight of the old moving average). Default 0.9. */
  bnMomentum?: number;
  /** Batch norm epsilon. Default 1e-5. */
  bnEpsilon?: number;
  /**
   * Builds the conv layer instead of tfjs-layers' `conv2d` with `'same'` padding: for a conv that
   * pads otherwise or dilates with a gradient (DeepLab's `AtrousConv2D`, which pads strided convs
   * symmetrically). It gets the bias-free configuration and must honour it.
   */
  conv?: (config: ConvLayerConfig) => tfl.layers.Layer;
}

/**
 * Conv (no bias) + batch norm + ReLU on a symbolic tensor, the block backbones are made of. The
 * layers are, in this order: the conv (tfjs-layers `Conv2D` with `'same'` padding and a He-normal
 * kernel, or what `conv` builds) and `DropClassBatchNormalization` (see {@link batchNormalization}),
 * which applies the ReLU itself unless `relu: false` (fused into its training kernel).
 *
 * @example
 * ```ts
 * let x = tfl.input({ shape: [null, null, 3] });
 * x = convBnRelu(x, { filters: 16, kernelSize: 3, seed: layerSeed(seed, 0) });
 * x = convBnRelu(x, { filters: 32, kernelSize: 3, strides: 2, seed: layerSeed(seed, 1) });
 * ```
 */
export function convBnRelu(x: tfl.SymbolicTensor, options: ConvBnReluOptions): tfl.SymbolicTensor {
  const config: ConvLayerConfig = {
    filters: options.filters,
    kernelSize: options.kernelSize,
    strides: options.strides ?? 1,
    dilationRate: options.dilationRate ?? 1,
    useBias: false,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(options.names ? { name: options.names.conv } : {}),
  };
  const conv = options.conv
    ? options.conv(config)
    : tfl.layers.conv2d({
        filters: config.filters,
        kernelSize: config.kernelSize,
        strides: config.strides,
        dilationRate: config.dilationRate,
        padding: 'same',
        useBias: false,
        kernelInitializer: tfl.initializers.heNormal({ seed: config.seed }),
        ...(config.name ? { name: config.name } : {}),
      });
  const y = conv.apply(x) as tfl.SymbolicTensor;
  // The ReLU is the batch norm layer's own (fused into its training kernel).
  const norm = batchNormalization({ momentum: options.bnMomentum ?? 0.9, epsilon: options.bnEpsilon ?? 1e-5, relu: options.relu !== false, ...(options.names ? { name: options.names.norm } : {}) });
  return norm.apply(y) as tfl.SymbolicTensor;
}
