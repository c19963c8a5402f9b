import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { dilatedConv2d, registerStockConversion } from '@dropclass/core';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

export interface AtrousConv2DConfig extends LayerArgs {
  filters: number;
  kernelSize: number;
  dilationRate: number;
  strides?: number;
  useBias?: boolean;
  seed?: number;
}

/**
 * A convolution padded by `dilationRate * (kernelSize - 1) / 2` on every side (PyTorch's
 * `padding=k//2` for a stride), with a dilation rate, computed by core's `dilatedConv2d`: dilated
 * where the backend has the gradient kernels, else as space-to-batch, plain conv, batch-to-space (or,
 * where the rate is at least the map's height and width, as the centre tap's 1x1 conv, all the other
 * taps reading padding). The result equals a dilated conv2d, but unlike tfjs's own dilated conv it
 * has a gradient, so dilated networks train.
 */
export class AtrousConv2D extends tfl.layers.Layer {
  static readonly className = 'AtrousConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly dilationRate: number;
  readonly strides: number;
  readonly useBias: boolean;
  private readonly seed?: number;
  private kernel?: tfl.LayerVariable;
  private bias?: tfl.LayerVariable;

  constructor(config: AtrousConv2DConfig) {
    super(config);
    this.filters = config.filters;
    this.kernelSize = config.kernelSize;
    this.dilationRate = config.dilationRate;
    this.strides = config.strides ?? 1;
    this.useBias = config.useBias ?? false;
    this.seed = config.seed;
    if (this.kernelSize % 2 !== 1) throw new RangeError(`AtrousConv2D needs an odd kernel size for 'same' padding, got ${this.kernelSize}`);
    if (this.dilationRate > 1 && this.strides > 1) throw new RangeError('AtrousConv2D takes a stride or a dilation rate above 1, not both');
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const channels = shape[shape.length - 1] as number;
    this.kernel = this.addWeight('kernel', [this.kernelSize, this.kernelSize, channels, this.filters], 'float32', tfl.initializers.heNormal({ seed: this.seed }));
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [b, h, w] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const down = (s: number | null) => (s == null ? null : Math.ceil(s / this.strides));
    return [b, down(h), down(w), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      const r = this.dilationRate;
      let y: tf.Tensor4D;
      if (r === 1 && this.strides > 1) {
        // Symmetric padding, as torchvision's ResNet: TF's 'same' pads only the bottom and right at
        // stride 2, which samples the main path one pixel off its 1x1 strided shortcut. Given to the
        // conv itself, not as a padded copy of the input.
        const p = (this.kernelSize - 1) / 2;
        y = tf.conv2d(x, kernel, this.strides, [[0, 0], [p, p], [p, p], [0, 0]]);
      } else {
        // core's dilated conv: dilated where the backend has its gradient kernels (the native
        // kernels do), else space-to-batch; the centre tap's 1x1 conv where the rate reaches the
        // map's size (ASPP's 12 and 18 on a small crop's 8x8 map).
        y = dilatedConv2d(x, kernel, r);
      }
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      dilationRate: this.dilationRate,
      strides: this.strides,
      useBias: this.useBias,
      ...(this.seed === undefined ? {} : { seed: this.seed }),
    };
  }
}

/**
 * Spreads a `[B,1,1,C]` map over the spatial size of a second input `[B,H,W,*]` (the image-pooling
 * branch of ASPP; bilinear upsampling of a 1x1 map is this constant).
 */
export class SpatialBroadcast extends tfl.layers.Layer {
  static readonly className = 'SpatialBroadcast';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [pooled, like] = inputShape as tfl.Shape[];
    return [like[0], like[1], like[2], pooled[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [pooled, like] = inputs as tf.Tensor[];
      const [b, h, w] = like.shape;
      return tf.mul(pooled, tf.ones([b, h, w, 1]));
    });
  }
}

/**
 * Max pooling padded by `padding` on every side, where padding never wins (as PyTorch's `MaxPool2d`,
 * which pads with -inf): the stem of torchvision's ResNet (3x3, stride 2, padding 1). The padding is
 * the pooling's own, not a padded copy of the input.
 */
export class PaddedMaxPool2D extends tfl.layers.Layer {
  static readonly className = 'PaddedMaxPool2D';
  readonly poolSize: number;
  readonly strides: number;
  readonly padding: number;

  constructor(config: { poolSize: number; strides: number; padding: number; name?: string }) {
    super(config);
    this.poolSize = config.poolSize;
    this.strides = config.strides;
    this.padding = config.padding;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [b, h, w, c] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const out = (s: number | null) => (s == null ? null : Math.floor((s + 2 * this.padding - this.poolSize) / this.strides) + 1);
    return [b, out(h), out(w), c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.maxPool(x, this.poolSize, this.strides, this.padding);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), poolSize: this.poolSize, strides: this.strides, padding: this.padding };
  }
}

tf.serialization.registerClass(AtrousConv2D);
tf.serialization.registerClass(SpatialBroadcast);
tf.serialization.registerClass(PaddedMaxPool2D);

// In an export: zero padding then a stock max pooling, the same where the input is a ReLU's (>= 0).
registerStockConversion(PaddedMaxPool2D.className, (layer, inputs) => {
  const pool = layer as PaddedMaxPool2D;
  const padded = tfl.layers.zeroPadding2d({ name: `${pool.name}_pad`, padding: pool.padding }).apply(inputs[0]) as tfl.SymbolicTensor;
  return tfl.layers.maxPooling2d({ name: pool.name, poolSize: pool.poolSize, strides: pool.strides, padding: 'valid' }).apply(padded) as tfl.SymbolicTensor;
});

// Exports (`exportStockModel`) rebuild these layers from stock tfjs-layers layers, for inference.
registerStockConversion(AtrousConv2D.className, (layer, inputs) => {
  const atrous = layer as AtrousConv2D;
  // tfjs's dilated conv2d has no gradient but computes the same forward pass; a strided conv is
  // padded symmetrically first, as the layer pads it.
  const strided = atrous.strides > 1;
  const conv = tfl.layers.conv2d({
    name: atrous.name,
    filters: atrous.filters,
    kernelSize: atrous.kernelSize,
    strides: atrous.strides,
    dilationRate: atrous.dilationRate,
    padding: strided ? 'valid' : 'same',
    useBias: atrous.useBias,
  });
  const padded = strided ? (tfl.layers.zeroPadding2d({ name: `${atrous.name}_pad`, padding: (atrous.kernelSize - 1) / 2 }).apply(inputs[0]) as tfl.SymbolicTensor) : inputs[0];
  const output = conv.apply(padded) as tfl.SymbolicTensor;
  conv.setWeights(atrous.getWeights());
  return output;
});

registerStockConversion(SpatialBroadcast.className, (layer, inputs) => {
  const [pooled, like] = inputs;
  // A 1x1 conv with a zero kernel and a bias of one gives a [B,H,W,1] map of ones from the second
  // input; the broadcasting product spreads the [B,1,1,C] map over it.
  const ones = tfl.layers.conv2d({ name: `${layer.name}_ones`, filters: 1, kernelSize: 1, kernelInitializer: 'zeros', biasInitializer: 'ones', trainable: false });
  const spread = ones.apply(like) as tfl.SymbolicTensor;
  return tfl.layers.multiply({ name: layer.name }).apply([pooled, spread]) as tfl.SymbolicTensor;
});
