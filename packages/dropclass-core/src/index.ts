export {
  BackboneOptionsError,
  type BackboneAdapter,
  type BackboneOptionIssue,
  type BackboneSource,
  type CommonBackboneOptions,
  type SchemaIssue,
  type SegmentationBackbone,
} from './adapter.js';
export { UnknownBackboneError, createBackbone, getBackbone, registerBackbone, registeredBackbones } from './registry.js';
export {
  InferenceOptionsError,
  checkInferenceOptions,
  inferClasses,
  inferLogits,
  paddedInputSize,
  type InferenceModel,
  type InferenceOptions,
} from './inference/inference.js';
export { BACKEND_NAMES, type BackendName, type InitBackendOptions, initBackend, wasmThreadCount } from './backend/select.js';
export { DROPCLASS_GRADIENTS, registerDropClassGradients } from './backend/gradients.js';
export { registerWasmGradientKernels } from './backend/wasm-gradients.js';
export { MAX_WASM_THREADS, type ThreadedWasmOptions, startThreadedWasm } from './backend/wasm-threads.js';
export { NO_CLASS_DROPPED, averagedImportance, classImportance, classSpecificFeatures } from './dropclass/importance.js';
export {
  DEFAULT_ALPHA,
  DEFAULT_BN_EPSILON,
  IGNORE_INDEX,
  type DropClassInputs,
  type DropClassTerms,
  type FeatureSelectionWeights,
  dropClassObjective,
  featureSelection,
  maskedCrossEntropy,
  pointwise,
  withoutClass,
} from './dropclass/objective.js';
export { DropClassHead, type DropClassHeadConfig } from './dropclass/head.js';
export { BatchNormalization, batchNormalization } from './layers/batch-norm.js';
export { type ConvBnReluOptions, type ConvLayerConfig, convBnRelu } from './layers/conv-bn-relu.js';
export { BilinearUpSampling2D, type BilinearUpSampling2DConfig } from './layers/upsampling.js';
export { type BatchNormResult, batchNormInTraining } from './ops/batch-norm.js';
export { resizeBilinear } from './dropclass/upsample.js';
export {
  DropClassModel,
  MODEL_FORMAT,
  MissingBackboneError,
  NonFiniteLossError,
  type DropClassModelOptions,
  type ModelInfo,
  type StepLosses,
  type TrainStepOptions,
} from './model/model.js';
export {
  EXPORT_FORMAT,
  EXPORT_WEIGHTS,
  STOCK_LAYER_CLASSES,
  type ExportMetadata,
  type ExportOptions,
  type ExportResult,
  type StockConversion,
  exportStockModel,
  registerStockConversion,
  toStockModel,
} from './model/export.js';
export { checkImages, checkLabels, nearestValidSize } from './model/input.js';
export { Sgd, polyLearningRate, type SgdOptions } from './train/sgd.js';
export { fileSystemHandler, writeFileAtomic } from './io/file-system.js';
export { Rng, layerSeed } from './rng.js';
export { BUNDLED_REFERENCE_DIR, checkReferenceFile, findReferenceFiles, type FileCheck, type QuantityCheck } from './reference/check.js';
