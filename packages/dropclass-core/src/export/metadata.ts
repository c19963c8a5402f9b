import type * as tfl from '@tensorflow/tfjs-layers';
import { paddedInputSize } from '../inference/inference.js';
import { METADATA_KEY, type ModelInfo } from '../model/metadata.js';
import { type Rgb, defaultPalette } from '../palette.js';

/** The format of an export's metadata (`userDefinedMetadata.dropclass.format` in its `model.json`). */
export const EXPORT_FORMAT = 'dropclass-export/1';

/** How a consumer of the export turns an image into a class map: recorded in `model.json`. */
export interface ExportMetadata {
  format: typeof EXPORT_FORMAT;
  backbone: string;
  dropclass: boolean;
  numClasses: number;
  classNames: string[];
  /** RGB colour of each class. */
  palette: Rgb[];
  input: {
    channels: number;
    /** The model takes `(pixel - mean) / std` per channel, pixels RGB in 0..255. */
    mean: Rgb;
    std: Rgb;
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

/** The metadata of an export of a model with this info: its class names, palette and normalisation, or their defaults. */
export function exportMetadata(info: ModelInfo, quantization: ExportMetadata['quantization']): ExportMetadata {
  const m = info.metadata;
  const classNames = m.classNames ?? Array.from({ length: info.numClasses }, (_, i) => `class ${i}`);
  if (classNames.length !== info.numClasses) {
    throw new Error(`the model's metadata names ${classNames.length} classes but the model has ${info.numClasses}: fix metadata.classNames`);
  }
  return {
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
      sizeMultiple: info.backbone.inputSizeMultiple,
      // The smallest size the backbone takes, by the rule evaluation and prediction pad with.
      minSize: paddedInputSize(1, info.backbone),
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
    quantization,
    step: info.step,
  };
}

/**
 * The {@link ExportMetadata} of a model loaded from an export (`tf.loadLayersModel`), or undefined
 * when the model holds none of this format (it was not written by `exportStockModel`).
 */
export function readExportMetadata(model: Pick<tfl.LayersModel, 'getUserDefinedMetadata'>): ExportMetadata | undefined {
  const metadata = (model.getUserDefinedMetadata() as Record<string, Partial<ExportMetadata> | undefined> | undefined)?.[METADATA_KEY];
  return metadata?.format === EXPORT_FORMAT ? (metadata as ExportMetadata) : undefined;
}

