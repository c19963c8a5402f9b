import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, type CommonBackboneOptions, type SegmentationBackbone, convBnRelu, defineBackbone, layerSeed } from '@dropclass/core';
import { z } from 'zod';

/**
 * The options a run config may give this backbone (`backbone.options`), with their defaults and
 * limits: the only check of them (`defineBackbone` below derives the adapter's from it).
 */
const optionsSchema = z
  .object({
    /** Channels of every conv layer. */
    width: z.number().int().positive().default(16),
    /** Residual conv + BN + ReLU blocks after the stride-2 stem. */
    layers: z.number().int().min(0).max(16).default(3),
  })
  .strict();

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/**
 * A learned per-channel scale (initially `init`) on a residual branch, as in CaiT and ConvNeXt.
 * A custom layer: registered with tfjs below, so models that hold it load wherever this package
 * is imported (and, where it is not, loading names this package).
 */
export class LayerScale extends tfl.layers.Layer {
  static readonly className = 'PlainFcnLayerScale';
  readonly init: number;
  private gamma?: tfl.LayerVariable;

  constructor(args: LayerArgs & { init?: number } = {}) {
    super(args);
    this.init = args.init ?? 0.1;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = inputShape as tfl.Shape;
    this.gamma = this.addWeight('gamma', [shape[shape.length - 1] as number], 'float32', tfl.initializers.constant({ value: this.init }));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.gamma!.read()));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), init: this.init };
  }
}

tf.serialization.registerClass(LayerScale);

/** Plain FCN options, complete. */
export type PlainFcnConfig = z.infer<typeof optionsSchema>;

/** Options of {@link createPlainFcn}: any of the config's, plus the seed and input channels. */
export type PlainFcnOptions = Partial<PlainFcnConfig> & CommonBackboneOptions;

/**
 * The adapter, a plain fully convolutional net: a stride-2 3x3 conv stem, then `layers` residual
 * blocks at half resolution, each `x + LayerScale(ReLU(BN(conv3x3(x))))`; its last feature map is
 * what DropClass classifies. Its name is the run config's `backbone.kind`, `package` is what a saved
 * model asks to install, and `schema` is the option schema above, from which `defineBackbone`
 * derives `defaults` and `parseOptions`. `create` gets the options the schema has checked and
 * completed, plus the seed and input channels.
 */
export const plainFcn: BackboneAdapter<PlainFcnConfig> = defineBackbone({
  name: 'plain-fcn',
  package: '@dropclass/example-custom-backbone',
  schema: optionsSchema,
  create({ width, layers, seed = 0, inputChannels = 3 }): SegmentationBackbone {
    let index = 0;
    // conv 3x3 (no bias: the batch norm cancels it) + batch norm + ReLU, each conv seeded on its own
    const block = (x: tfl.SymbolicTensor, strides: number) => convBnRelu(x, { filters: width, kernelSize: 3, strides, seed: layerSeed(seed, index++) });
    const input = tfl.input({ shape: [null, null, inputChannels] });
    let x = block(input, 2);
    for (let i = 0; i < layers; i++) x = tfl.layers.add().apply([x, new LayerScale().apply(block(x, 1)) as tfl.SymbolicTensor]) as tfl.SymbolicTensor;
    return {
      name: 'plain-fcn',
      model: tfl.model({ inputs: input, outputs: x }),
      outputStride: 2,
      inputChannels,
      // the stride-2 stem halves the size: odd sizes would not map back onto the labels
      inputSizeMultiple: 2,
      minInputSize: 2,
    };
  },
});

/**
 * The plain FCN from code: any of the config's options (checked by the schema, the rest default),
 * plus the seed and input channels.
 */
export function createPlainFcn(options: PlainFcnOptions = {}): SegmentationBackbone {
  const { seed, inputChannels, ...own } = options;
  return plainFcn.create({ ...plainFcn.parseOptions(own), seed, inputChannels });
}
