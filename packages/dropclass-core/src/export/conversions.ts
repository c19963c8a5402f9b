import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Rebuilds one custom layer from stock tfjs-layers layers: applies them to `inputs` (the layer's
 * inputs in the new graph), gives them the layer's weights (inference only) and returns the output.
 */
export type StockConversion = (layer: tfl.layers.Layer, inputs: tfl.SymbolicTensor[]) => tfl.SymbolicTensor;

// Kept on globalThis, like the backbone registry, so that a backbone package resolving its own copy
// of @dropclass/core registers its conversions where the copy that exports the model looks them up.
const KEY = Symbol.for('@dropclass/core/stock-conversions');
const conversions: Map<string, StockConversion> = ((globalThis as Record<symbol, unknown>)[KEY] ??= new Map<string, StockConversion>()) as Map<
  string,
  StockConversion
>;

/**
 * Layers of `@tensorflow/tfjs-layers` an export may hold as they are (they are cloned from their
 * config). Any other class needs a conversion registered with `registerStockConversion`.
 */
export const STOCK_LAYER_CLASSES: ReadonlySet<string> = new Set([
  'InputLayer', 'Dense', 'Dropout', 'SpatialDropout1D', 'Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'ThresholdedReLU',
  'Softmax', 'Flatten', 'Reshape', 'Permute', 'RepeatVector', 'Conv1D', 'Conv2D', 'Conv2DTranspose', 'Conv3D', 'SeparableConv2D',
  'DepthwiseConv2D', 'Cropping2D', 'UpSampling2D', 'ZeroPadding2D', 'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D',
  'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D', 'GlobalAveragePooling1D', 'GlobalAveragePooling2D',
  'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'BatchNormalization', 'LayerNormalization', 'Add', 'Multiply', 'Average',
  'Maximum', 'Minimum', 'Concatenate', 'Dot', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'Masking', 'Rescaling',
]);

/**
 * Tells `toStockModel` how to rebuild a custom layer class from stock layers. Backbone packages
 * register their own layers on import (DeepLab: `AtrousConv2D`, `SpatialBroadcast`), and this
 * package its own (`DropClassBatchNormalization`, `BilinearUpSampling2D`). The conversions are
 * shared by every copy of `@dropclass/core` in a process; registering a class again replaces its
 * conversion.
 */
export function registerStockConversion(className: string, conversion: StockConversion): void {
  conversions.set(className, conversion);
}

/** The conversion registered for a layer class, if any. */
export function stockConversion(className: string): StockConversion | undefined {
  return conversions.get(className);
}
