import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Float16Array } from '@petamoriken/float16';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BatchNormalization } from '../layers/batch-norm.js';
import { paddedInputSize } from '../inference/inference.js';
import { BilinearUpSampling2D } from '../layers/upsampling.js';
import { MODEL_JSON, writeFileAtomic } from '../node/file-system.js';
import type { DropClassModel } from '../model/model.js';
import { defaultPalette } from '../palette.js';

/** The format of an export's metadata (`userDefinedMetadata.dropclass.format` in its `model.json`). */
export const EXPORT_FORMAT = 'dropclass-export/1';
/** The weight file of an export (one shard; `model.json` names it in its weights manifest). */
export const EXPORT_WEIGHTS = 'group1-shard1of1.bin';

type SymbolicTensor = tfl.SymbolicTensor;

/**
 * Rebuilds one custom layer from stock tfjs-layers layers: applies them to `inputs` (the layer's
 * inputs in the new graph), gives them the layer's weights (inference only) and returns the output.
 */
export type StockConversion = (layer: tfl.layers.Layer, inputs: SymbolicTensor[]) => SymbolicTensor;

const conversions = new Map<string, StockConversion>();

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
 * register their own layers on import (DeepLab: `AtrousConv2D`, `SpatialBroadcast`).
 */
export function registerStockConversion(className: string, conversion: StockConversion): void {
  conversions.set(className, conversion);
}

registerStockConversion(BatchNormalization.className, (layer, inputs) => {
  const stock = tfl.layers.batchNormalization(layer.getConfig() as Parameters<typeof tfl.layers.batchNormalization>[0]);
  const output = stock.apply(inputs[0]) as SymbolicTensor;
  stock.setWeights(layer.getWeights());
  return output;
});

/**
 * Bilinear x2 upsampling with half-pixel centres from stock layers, exactly: nearest x2, then the
 * separable filter [1/4, 1/2, 1/4] (zero padded), then division by what the filter summed in each
 * direction (3/4 on the first and last row or column, 1 inside), which is PyTorch's clamping at the
 * border. Stock layers cannot divide, but over those two values 1/w = 7/3 - 4/3 w, a depthwise
 * conv with a bias over a map of ones.
 */
const TENT = [0.25, 0.5, 0.25];

registerStockConversion(BilinearUpSampling2D.className, (layer, inputs) => {
  const factor = (layer as BilinearUpSampling2D).factor;
  if (factor !== 2) throw new Error(`layer ${layer.name}: an export rebuilds BilinearUpSampling2D from stock layers for factor 2 only, not ${factor}`);
  const name = layer.name;
  const channels = inputs[0].shape[3] as number;
  const depthwise = (x: SymbolicTensor, suffix: string, kernelSize: [number, number], kernel: tf.Tensor, bias?: number) => {
    const conv = tfl.layers.depthwiseConv2d({ name: `${name}_${suffix}`, kernelSize, padding: 'same', useBias: bias !== undefined });
    const y = conv.apply(x) as SymbolicTensor;
    const weights = bias === undefined ? [kernel] : [kernel, tf.tensor1d([bias])];
    conv.setWeights(weights);
    tf.dispose(weights);
    return y;
  };
  const nearest = tfl.layers.upSampling2d({ name: `${name}_nearest`, size: [2, 2] }).apply(inputs[0]) as SymbolicTensor;
  const summed = depthwise(nearest, 'tent', [3, 3], tf.tidy(() => tf.tile(tf.reshape(tf.outerProduct(TENT, TENT), [3, 3, 1, 1]), [1, 1, channels, 1])));
  const onesLayer = tfl.layers.conv2d({ name: `${name}_ones`, filters: 1, kernelSize: 1, kernelInitializer: 'zeros', biasInitializer: 'ones' });
  const ones = onesLayer.apply(nearest) as SymbolicTensor;
  const inverse = TENT.map((t) => (-4 / 3) * t);
  const rows = depthwise(ones, 'rows', [3, 1], tf.tensor4d(inverse, [3, 1, 1, 1]), 7 / 3);
  const columns = depthwise(ones, 'columns', [1, 3], tf.tensor4d(inverse, [1, 3, 1, 1]), 7 / 3);
  const reciprocal = tfl.layers.multiply({ name: `${name}_reciprocal` }).apply([rows, columns]) as SymbolicTensor;
  return tfl.layers.multiply({ name }).apply([summed, reciprocal]) as SymbolicTensor;
});

type LayerConstructor = new (config: tf.serialization.ConfigDict) => tfl.layers.Layer;

function cloneStock(layer: tfl.layers.Layer, inputs: SymbolicTensor[]): SymbolicTensor {
  const clone = new (layer.constructor as LayerConstructor)(layer.getConfig());
  const output = clone.apply(inputs.length === 1 ? inputs[0] : inputs) as SymbolicTensor | SymbolicTensor[];
  if (Array.isArray(output)) throw new Error(`layer ${layer.name} (${layer.getClassName()}) has several outputs; an export takes single-output layers`);
  clone.setWeights(layer.getWeights());
  return output;
}

/**
 * A copy of a functional model made of stock tfjs-layers layers only, with the same weights and the
 * same inference output: custom layers are rebuilt through their registered conversions. The copy
 * loads with `tf.loadLayersModel` from `@tensorflow/tfjs` with nothing else registered.
 */
export function toStockModel(model: tfl.LayersModel): tfl.LayersModel {
  const mapped = new Map<string, SymbolicTensor>();
  const key = (t: SymbolicTensor) => `${t.id}`;
  const inputs = model.inputs.map((x, i) => {
    const input = tfl.input({ shape: x.shape.slice(1), dtype: x.dtype, name: model.inputNames[i] });
    mapped.set(key(x), input);
    return input;
  });
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const className = layer.getClassName();
    const conversion = conversions.get(className);
    if (!conversion && !STOCK_LAYER_CLASSES.has(className)) {
      throw new Error(
        `layer ${layer.name} is a ${className}, which plain tfjs-layers cannot load: register its stock equivalent with ` +
          'registerStockConversion (importing the backbone package that defines it does this for its own layers)',
      );
    }
    if (layer.inboundNodes.length !== 1) {
      throw new Error(`layer ${layer.name} (${className}) is applied ${layer.inboundNodes.length} times; an export takes layers applied once`);
    }
    const node = layer.inboundNodes[0];
    const nodeInputs = node.inputTensors.map((t) => {
      const m = mapped.get(key(t));
      if (!m) throw new Error(`layer ${layer.name} (${className}) reads ${t.name}, which no earlier layer of ${model.name} makes`);
      return m;
    });
    if (node.outputTensors.length !== 1) throw new Error(`layer ${layer.name} (${className}) has ${node.outputTensors.length} outputs; an export takes one`);
    const output = conversion ? conversion(layer, nodeInputs) : cloneStock(layer, nodeInputs);
    mapped.set(key(node.outputTensors[0]), output);
  }
  const outputs = model.outputs.map((t) => mapped.get(key(t))!);
  return tfl.model({ inputs, outputs, name: model.name });
}

/** How a consumer of the export turns an image into a class map: recorded in `model.json`. */
export interface ExportMetadata {
  format: typeof EXPORT_FORMAT;
  backbone: string;
  dropclass: boolean;
  numClasses: number;
  classNames: string[];
  /** RGB colour of each class. */
  palette: [number, number, number][];
  input: {
    channels: number;
    /** The model takes `(pixel - mean) / std` per channel, pixels RGB in 0..255. */
    mean: [number, number, number];
    std: [number, number, number];
    /** Height and width must be multiples of this (and at least `minSize`). */
    sizeMultiple: number;
    minSize: number;
    /** What to do with other sizes. */
    sizeRule: string;
  };
  output: {
    /** The model outputs logits `[B, h, w, K]` at 1/stride of the input size. */
    stride: number;
    /** How the logits are brought to the input size before the argmax. */
    upsample: string;
  };
  quantization: 'none' | 'float16';
  /** The training step of the weights exported (absent in exports written before it was recorded). */
  step?: number;
}

/** Options of {@link exportStockModel}. */
export interface ExportOptions {
  /** Weight quantisation: 'float16' halves the weight file. Default 'none'. */
  quantize?: 'none' | 'float16';
}

/** What {@link exportStockModel} wrote. */
export interface ExportResult {
  metadata: ExportMetadata;
  /** Bytes of the weight file. */
  weightBytes: number;
  /** Bytes of `model.json`. */
  topologyBytes: number;
}

/** float32 weights -> float16 (round to nearest even), with the manifest entries that say so. */
function quantizeFloat16(specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const out = specs.map((spec) => {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = count * 4;
    if (spec.dtype !== 'float32') {
      parts.push(new Uint8Array(data, offset, bytes));
      offset += bytes;
      return spec;
    }
    const half = new Float16Array(new Float32Array(data.slice(offset, offset + bytes)));
    parts.push(new Uint8Array(half.buffer));
    offset += bytes;
    return { ...spec, quantization: { dtype: 'float16' as const } };
  });
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.byteLength;
  }
  return { specs: out, data: joined.buffer };
}

/**
 * Writes a deployable tfjs Layers model (`model.json` + one weight shard) of stock layers only:
 * the DropClass head folded (SPEC section 4), batch norm as the stock layer in inference mode,
 * custom backbone layers rebuilt through their conversions; the image size rule, class names,
 * palette and normalisation go into the model's user metadata (`dropclass`).
 */
export async function exportStockModel(model: DropClassModel, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const quantize = options.quantize ?? 'none';
  if (quantize !== 'none' && quantize !== 'float16') throw new Error(`quantize must be 'none' or 'float16', got ${JSON.stringify(quantize)}`);
  const { info } = model;
  const m = info.metadata as Partial<{ classNames: string[]; palette: [number, number, number][]; mean: [number, number, number]; std: [number, number, number] }>;
  const classNames = m.classNames ?? Array.from({ length: info.numClasses }, (_, i) => `class ${i}`);
  if (classNames.length !== info.numClasses) {
    throw new Error(`the model's metadata names ${classNames.length} classes but the model has ${info.numClasses}: fix metadata.classNames`);
  }
  const { inputSizeMultiple } = info.backbone;
  // The smallest size the backbone takes, by the rule evaluation and prediction pad with.
  const minSize = paddedInputSize(1, info.backbone);
  const metadata: ExportMetadata = {
    format: EXPORT_FORMAT,
    backbone: info.backbone.name,
    dropclass: info.dropclass,
    numClasses: info.numClasses,
    classNames,
    palette: m.palette ?? defaultPalette(classNames.length),
    input: {
      channels: info.backbone.inputChannels,
      mean: m.mean ?? [0, 0, 0],
      std: m.std ?? [1, 1, 1],
      sizeMultiple: inputSizeMultiple,
      minSize,
      sizeRule:
        'normalise, then pad the bottom and right edges with zeros (the mean colour) up to the next multiple of sizeMultiple, and to at least minSize; ' +
        'crop the class map back to the image size',
    },
    output: {
      stride: info.backbone.outputStride,
      upsample:
        info.backbone.outputStride === 1
          ? 'none: the logits are at the input size'
          : 'bilinear with half-pixel centres to the input size, then argmax: tf.image.resizeBilinear(logits, [height, width], false, true)',
    },
    quantization: quantize,
    step: info.step,
  };
  const folded = model.toFoldedModel();
  const stock = toStockModel(folded);
  try {
    let artifacts: tf.io.ModelArtifacts | undefined;
    await stock.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    }));
    let specs = artifacts!.weightSpecs ?? [];
    let data = artifacts!.weightData ? tf.io.CompositeArrayBuffer.join(artifacts!.weightData) : new ArrayBuffer(0);
    if (quantize === 'float16') ({ specs, data } = quantizeFloat16(specs, data));
    const modelJson: tf.io.ModelJSON = {
      modelTopology: artifacts!.modelTopology as object,
      format: 'layers-model',
      generatedBy: artifacts!.generatedBy,
      convertedBy: null,
      userDefinedMetadata: { dropclass: metadata as unknown as object },
      weightsManifest: [{ paths: [EXPORT_WEIGHTS], weights: specs }],
    };
    const text = JSON.stringify(modelJson);
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(join(dir, EXPORT_WEIGHTS), new Uint8Array(data));
    await writeFileAtomic(join(dir, MODEL_JSON), text);
    return { metadata, weightBytes: data.byteLength, topologyBytes: Buffer.byteLength(text) };
  } finally {
    stock.dispose();
    // The folded model shares the backbone's layers with `model`: dispose only the layers it added.
    const shared = new Set(model.network.layers);
    for (const layer of folded.layers) if (!shared.has(layer)) layer.dispose();
  }
}
