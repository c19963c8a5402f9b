import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, BackboneOptionsError, type CommonBackboneOptions, type SegmentationBackbone, convBnRelu, layerSeed } from '@dropclass/core';
import { z } from 'zod';

/** The options a run config may give this backbone (`backbone.options`), with their defaults. */
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
 * A plain fully convolutional net: a stride-2 3x3 conv stem, then `layers` residual blocks at half
 * resolution, each `x + LayerScale(ReLU(BN(conv3x3(x))))`. Its last feature map is what DropClass
 * classifies.
 */
export function createPlainFcn(options: PlainFcnOptions = {}): SegmentationBackbone {
  const { width, layers } = plainFcn.parseOptions({ width: options.width, layers: options.layers });
  const inputChannels = options.inputChannels ?? 3;
  let index = 0;
  // conv 3x3 (no bias: the batch norm cancels it) + batch norm + ReLU, each conv seeded on its own
  const block = (x: tfl.SymbolicTensor, strides: number) => convBnRelu(x, { filters: width, kernelSize: 3, strides, seed: layerSeed(options.seed ?? 0, index++) });
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
}

/**
 * The adapter: its name is the run config's `backbone.kind`, `package` is what a saved model asks
 * to install, and the option schema (with the defaults) lives here and nowhere else.
 */
export const plainFcn: BackboneAdapter<PlainFcnConfig> = {
  name: 'plain-fcn',
  package: '@dropclass/example-custom-backbone',
  defaults: optionsSchema.parse({}),
  parseOptions(raw) {
    // undefined values mean "the default" (createPlainFcn passes them through)
    const given = Object.fromEntries(Object.entries((raw ?? {}) as object).filter(([, v]) => v !== undefined));
    const result = optionsSchema.safeParse(given);
    if (!result.success) throw BackboneOptionsError.fromSchemaIssues('plain-fcn', result.error.issues);
    return result.data;
  },
  create: (options) => createPlainFcn(options),
};
