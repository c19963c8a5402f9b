import type { BackboneSource, SegmentationBackbone } from '../adapter.js';
import type { PixelLossOptions } from '../losses/pixel-loss.js';
import type { Rgb } from '../palette.js';

/** The format of a saved model's {@link ModelInfo}. */
export const MODEL_FORMAT = 'dropclass-model/1';

/**
 * The key of a saved model's {@link ModelInfo} in the tfjs model artifacts' `userDefinedMetadata`
 * (an export's `ExportMetadata` is under the same key, with its own format).
 */
export const METADATA_KEY = 'dropclass';

/**
 * What the application saves with a model (`DropClassModel.create`'s `metadata`): the fields
 * `dropclass predict`, `dropclass export` and an export's metadata read, and anything else the
 * application wants kept (any JSON value).
 */
export interface ModelMetadata {
  /** Name of each class, `numClasses` of them. Default in an export: `class 0`, `class 1`, ... */
  classNames?: string[];
  /** RGB colour of each class. Default: `defaultPalette(numClasses)`. */
  palette?: Rgb[];
  /** The model takes `(pixel - mean) / std` per channel, pixels RGB in 0..255. Default 0. */
  mean?: Rgb;
  /** Default 1. */
  std?: Rgb;
  [key: string]: unknown;
}

/** What a saved model records besides its weights (`DropClassModel.info`). */
export interface ModelInfo {
  format: typeof MODEL_FORMAT;
  backbone: Pick<SegmentationBackbone, 'name' | 'outputStride' | 'inputChannels' | 'inputSizeMultiple' | 'minInputSize'> & {
    /** Channels `C` of the feature map, read from the backbone model's output shape. */
    channels: number;
    /** The adapter, package and options that built the backbone (when built by `createBackbone`). */
    source?: BackboneSource;
  };
  numClasses: number;
  dropclass: boolean;
  alpha: number;
  seed: number;
  ignoreIndex: number;
  /** The pixel loss of the cross-entropy terms; absent: the plain cross-entropy. */
  loss?: PixelLossOptions;
  momentum: number;
  weightDecay: number;
  /** Training steps taken so far. */
  step: number;
  /** State of the generator that draws the dropped class, so a resumed run draws the same classes. */
  rngState: number;
  metadata: ModelMetadata;
}

