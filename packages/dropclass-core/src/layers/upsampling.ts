import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resizeBilinear } from '../dropclass/upsample.js';
import { registerStockConversion } from '../export/conversions.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Configuration of {@link BilinearUpSampling2D}: a tfjs-layers layer's, plus the factor. */
export interface BilinearUpSampling2DConfig extends LayerArgs {
  /** Integer factor for height and width. Default 2. */
  factor?: number;
}

/**
 * Bilinear upsampling by an integer factor with half-pixel centres, as PyTorch's
 * `F.interpolate(mode='bilinear', align_corners=False)` and TF's `half_pixel_centers=True`.
 * tfjs-layers' `upSampling2d({interpolation: 'bilinear'})` samples at `dst * in / out` instead, which
 * shifts every upsampled map by a quarter input pixel against the skip connections it is
 * concatenated with; this layer does not, and its gradient is exact on every backend.
 */
export class BilinearUpSampling2D extends tfl.layers.Layer {
  static readonly className = 'BilinearUpSampling2D';
  readonly factor: number;

  constructor(config: BilinearUpSampling2DConfig = {}) {
    super(config);
    this.factor = config.factor ?? 2;
    if (!Number.isInteger(this.factor) || this.factor < 1) throw new RangeError(`BilinearUpSampling2D factor must be a positive integer, got ${this.factor}`);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [b, h, w, c] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const up = (s: number | null) => (s == null ? null : s * this.factor);
    return [b, up(h), up(w), c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return resizeBilinear(x, x.shape[1] * this.factor, x.shape[2] * this.factor);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), factor: this.factor };
  }
}
tf.serialization.registerClass(BilinearUpSampling2D);

/**
 * In an export, bilinear x2 upsampling with half-pixel centres from stock layers, exactly: nearest
 * x2, then the separable filter [1/4, 1/2, 1/4] (zero padded), then division by what the filter
 * summed in each direction (3/4 on the first and last row or column, 1 inside), which is PyTorch's
 * clamping at the border. Stock layers cannot divide, but over those two values 1/w = 7/3 - 4/3 w,
 * a depthwise conv with a bias over a map of ones.
 */
const TENT = [0.25, 0.5, 0.25];

registerStockConversion(BilinearUpSampling2D.className, (layer, inputs) => {
  const factor = (layer as BilinearUpSampling2D).factor;
  if (factor !== 2) throw new Error(`layer ${layer.name}: an export rebuilds BilinearUpSampling2D from stock layers for factor 2 only, not ${factor}`);
  const name = layer.name;
  const channels = inputs[0].shape[3] as number;
  const depthwise = (x: tfl.SymbolicTensor, suffix: string, kernelSize: [number, number], kernel: tf.Tensor, bias?: number) => {
    const conv = tfl.layers.depthwiseConv2d({ name: `${name}_${suffix}`, kernelSize, padding: 'same', useBias: bias !== undefined });
    const y = conv.apply(x) as tfl.SymbolicTensor;
    const weights = bias === undefined ? [kernel] : [kernel, tf.tensor1d([bias])];
    conv.setWeights(weights);
    tf.dispose(weights);
    return y;
  };
  const nearest = tfl.layers.upSampling2d({ name: `${name}_nearest`, size: [2, 2] }).apply(inputs[0]) as tfl.SymbolicTensor;
  const summed = depthwise(nearest, 'tent', [3, 3], tf.tidy(() => tf.tile(tf.reshape(tf.outerProduct(TENT, TENT), [3, 3, 1, 1]), [1, 1, channels, 1])));
  const onesLayer = tfl.layers.conv2d({ name: `${name}_ones`, filters: 1, kernelSize: 1, kernelInitializer: 'zeros', biasInitializer: 'ones' });
  const ones = onesLayer.apply(nearest) as tfl.SymbolicTensor;
  const inverse = TENT.map((t) => (-4 / 3) * t);
  const rows = depthwise(ones, 'rows', [3, 1], tf.tensor4d(inverse, [3, 1, 1, 1]), 7 / 3);
  const columns = depthwise(ones, 'columns', [1, 3], tf.tensor4d(inverse, [1, 3, 1, 1]), 7 / 3);
  const reciprocal = tfl.layers.multiply({ name: `${name}_reciprocal` }).apply([rows, columns]) as tfl.SymbolicTensor;
  return tfl.layers.multiply({ name }).apply([summed, reciprocal]) as tfl.SymbolicTensor;
});
