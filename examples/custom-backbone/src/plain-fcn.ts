import * as tfl from '@tensorflow/tfjs-layers';
import { type BackboneAdapter, BackboneOptionsError, type CommonBackboneOptions, type SegmentationBackbone, layerSeed } from '@dropclass/core';
import { z } from 'zod';

/** The options a run config may give this backbone (`backbone.options`), with their defaults. */
const optionsSchema = z
  .object({
    /** Channels of every conv layer. */
    width: z.number().int().positive().default(16),
    /** Conv + BN + ReLU layers after the stride-2 stem. */
    layers: z.number().int().min(0).max(16).default(3),
  })
  .strict();

/** Plain FCN options, complete. */
export type PlainFcnConfig = z.infer<typeof optionsSchema>;

/** Options of {@link createPlainFcn}: any of the config's, plus the seed and input channels. */
export type PlainFcnOptions = Partial<PlainFcnConfig> & CommonBackboneOptions;

/**
 * A plain fully convolutional net: a stride-2 3x3 conv stem, then `layers` 3x3 conv + batch norm +
 * ReLU at half resolution. Its last feature map is what DropClass classifies.
 */
export function createPlainFcn(options: PlainFcnOptions = {}): SegmentationBackbone {
  const { width, layers } = plainFcn.parseOptions({ width: options.width, layers: options.layers });
  const inputChannels = options.inputChannels ?? 3;
  let index = 0;
  const block = (x: tfl.SymbolicTensor, strides: number) => {
    const conv = tfl.layers.conv2d({ filters: width, kernelSize: 3, strides, padding: 'same', kernelInitializer: tfl.initializers.heNormal({ seed: layerSeed(options.seed ?? 0, index++) }) });
    const normed = tfl.layers.batchNormalization().apply(conv.apply(x)) as tfl.SymbolicTensor;
    return tfl.layers.reLU().apply(normed) as tfl.SymbolicTensor;
  };
  const input = tfl.input({ shape: [null, null, inputChannels] });
  let x = block(input, 2);
  for (let i = 0; i < layers; i++) x = block(x, 1);
  return {
    name: 'plain-fcn',
    model: tfl.model({ inputs: input, outputs: x }),
    channels: width,
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
