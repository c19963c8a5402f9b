import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resizeBilinear } from '../dropclass/upsample.js';

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
