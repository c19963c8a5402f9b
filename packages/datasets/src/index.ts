export {
  DataCheckError,
  checkDataset,
  defaultCheckCacheFile,
  dropclassCacheDir,
  formatDataProblems,
  type DataCheckOptions,
  type DataCheckResult,
  type DataProblem,
} from './check.js';
export { CITYSCAPES_CLASSES, CITYSCAPES_TRAIN_IDS, openCityscapes } from './cityscapes.js';
export { readImage, readLabelPng } from './decode.js';
export { DatasetError } from './errors.js';
export { CLASSES_JSON, openFolderDataset, readClassesFile, type ClassesFile } from './folder.js';
export { defaultPalette } from '@dropclass/core';
export { openDataset, type DatasetKind, type OpenDatasetOptions } from './open.js';
export { PairedDataset, type SamplePair } from './paired.js';
export { IMAGENET_MEAN, IMAGENET_STD, createBatchStream, createEvalStream, type Batch, type BatchOptions } from './pipeline.js';
export { type ClassBalance, classBalanceWeights, computeClassFrequencies, type ClassFrequencies } from './stats.js';
export {
  SYNTHETIC_CLASS_NAMES,
  SYNTHETIC_CONTEXTS,
  SYNTHETIC_OBJECTS,
  SYNTHETIC_DEFAULT_COUNTS,
  SYNTHETIC_PRETRAIN_COUNTS,
  SYNTHETIC_GENERATOR_VERSION,
  SYNTHETIC_PALETTE,
  SYNTHETIC_STATS_JSON,
  differingKeys,
  ensureSynthetic,
  formatSyntheticStats,
  generateSynthetic,
  planSynthetic,
  renderSynthetic,
  resolveSyntheticOptions,
  syntheticLayout,
  type SyntheticGeneratorOptions,
  type SyntheticLayout,
  type SyntheticMode,
  type SyntheticOptions,
  type SyntheticSplit,
  type SyntheticStats,
} from './synthetic.js';
export { IGNORE_INDEX, type LabelMap, type RawImage, type Rgb, type Sample, type SegmentationDataset, type SkippedSample } from './types.js';
export { VOC_CLASS_NAMES, openVoc, vocPalette, type VocOptions } from './voc.js';
