/**
 * `@dropclass/core`: DropClass for any segmentation backbone. A model is a backbone (any
 * tfjs-layers model from images to a feature map `A`) followed by the {@link DropClassHead}.
 *
 * Training step (`DropClassModel.trainStep`, called per batch of the dataset's stream, e.g.
 * `createBatchStream` of `@dropclass/datasets`):
 *
 *   images [B,H,W,3], labels [B,H,W]
 *     -> checkImages, checkLabels
 *     -> drawDroppedClass                     the class z to suppress, with probability `progress`
 *     -> features.apply (the backbone)        feature map A [B,h,w,C]
 *     -> DropClassHead.trainingLosses
 *        -> dropClassObjective
 *           -> averagedImportance             class importance S = classImportance(W) = relu(W),
 *                                             averaged over the classes kept (z suppressed): the
 *                                             scale s of the class-specific features A * S_c
 *           -> featureSelection               relu(BN(conv1x1(A * s))), batch statistics
 *                                             (batchNormInTraining)
 *           -> pointwise                      logits = A W + b, logitsDrop = selected W + b
 *           -> maskedCrossEntropy, softmaxLosses
 *                                             (1 - t) CE + t CE_drop + alpha * mean p_drop(z)
 *        -> updateMovingStatistics            the feature-selection batch norm's moving statistics
 *     -> tf.variableGrads -> Sgd.step         SGD with momentum and weight decay
 *
 * Prediction (`inferClasses`, or `DropClassModel.predict` on sizes the backbone takes):
 *
 *   image [B,H,W,3]
 *     -> inferLogits -> checkInferenceOptions
 *     -> wholeImageLogits / slidingWindowLogits
 *                                             padding to paddedInputSize (or windows)
 *     -> DropClassModel.predictLogits -> checkImages
 *     -> features.apply (the backbone)        feature map A
 *     -> DropClassHead.inferenceLogits        averagedImportance over every class (none dropped),
 *                                             featureSelection with the moving statistics, pointwise
 *     -> resizeBilinear                       logits at the input size, then cropped back
 *     -> inferClasses: tf.argMax              classes [B,H,W]
 *
 * `DropClassModel.toFoldedModel` (and `exportStockModel`) give the prediction path with the head
 * folded into stock layers by `DropClassHead.applyFolded` (`foldFeatureSelection`).
 *
 * @packageDocumentation
 */

// Models: build, train, predict, save and load (through tfjs IOHandlers; directories: @dropclass/core/node).
export { DropClassModel, type DropClassModelOptions, type StepLosses, type TrainStepOptions } from './model/model.js';
export { MODEL_FORMAT, type ModelInfo, type ModelMetadata } from './model/metadata.js';
export { MissingBackboneError, NonFiniteLossError } from './model/errors.js';
export { DropClassHead } from './dropclass/head.js';
export { polyLearningRate, type SgdOptions } from './train/sgd.js';

// Pixel losses of the cross-entropy terms: class weights, focal loss, OHEM.
export { checkPixelLoss, pixelLoss, type PixelLossOptions } from './losses/pixel-loss.js';

// Weights from elsewhere: safetensors files (torchvision, timm) and other models, loaded strictly
// (files on disk: readSafetensors of @dropclass/core/node).
export { WeightFileError, encodeSafetensors, parseSafetensors, type StateDict, type StoredTensor } from './weights/safetensors.js';
export {
  MODEL_PARTS,
  WeightMismatchError,
  loadStateDict,
  namedWeights,
  torchShape,
  type LoadReport,
  type ModelPart,
  type NamedWeight,
  type WeightMap,
} from './weights/state-dict.js';
export { NO_CLASS_DROPPED } from './dropclass/importance.js';
export { IGNORE_INDEX } from './dropclass/objective.js';

// The objective's softmax terms, the SGD step and the moving statistics' update as ops, and the fused
// kernels a backend may register for them, for batch norm in training, bilinear resizing and the
// gradients of a dilated convolution (which tfjs's own kernels lack).
export { SOFTMAX_LOSSES_GRAD_KERNEL, SOFTMAX_LOSSES_KERNEL, type SoftmaxLossesAttrs, softmaxLosses } from './ops/softmax-losses.js';
export {
  BATCH_NORM_TRAINING_GRAD_KERNEL,
  BATCH_NORM_TRAINING_KERNEL,
  type BatchNormTrainingAttrs,
  MOVING_STATISTICS_KERNEL,
  type MovingStatisticsAttrs,
  updateMovingStatistics,
} from './ops/batch-norm.js';
export { SGD_UPDATE_KERNEL, type SgdUpdateAttrs, sgdUpdate } from './ops/sgd-update.js';
export { RESIZE_BILINEAR_GRAD_KERNEL, RESIZE_BILINEAR_KERNEL, type ResizeBilinearAttrs } from './dropclass/upsample.js';
export { DILATED_CONV2D_FILTER_GRAD_KERNEL, DILATED_CONV2D_INPUT_GRAD_KERNEL, type DilatedConvGradAttrs, dilatedConv2d } from './ops/dilated-conv.js';

// Whole-image inference.
export {
  InferenceOptionsError,
  checkInferenceOptions,
  inferClasses,
  inferLogits,
  paddedInputSize,
  type InferenceModel,
  type InferenceOptions,
} from './inference/inference.js';

// Backbones: the interface, the registry, and building blocks for plugin authors.
export {
  BackboneOptionsError,
  defineBackbone,
  mustBe,
  parseBackboneOptions,
  type BackboneAdapter,
  type BackboneDefinition,
  type BackboneOptionIssue,
  type BackboneOptionsSchema,
  type BackboneSource,
  type CommonBackboneOptions,
  type SchemaIssue,
  type SegmentationBackbone,
  type StandardSchemaResult,
} from './adapter.js';
export { UnknownBackboneError, createBackbone, getBackbone, registerBackbone, registeredBackbones } from './registry.js';
export { layerSeed } from './rng.js';
export { type Rgb, defaultPalette } from './palette.js';
export { type ConvBnReluOptions, type ConvLayerConfig, convBnRelu } from './layers/conv-bn-relu.js';
export { batchNormalization } from './layers/batch-norm.js';
export { BilinearUpSampling2D, type BilinearUpSampling2DConfig } from './layers/upsampling.js';

// Export to a stock tfjs-layers model (to a directory: exportStockModel of @dropclass/core/node).
export { type StockConversion, STOCK_LAYER_CLASSES, registerStockConversion } from './export/conversions.js';
export { toStockModel } from './export/stock-model.js';
export { EXPORT_FORMAT, type ExportMetadata, readExportMetadata } from './export/metadata.js';
export { EXPORT_WEIGHTS, type ExportOptions, type ExportResult, exportStockModel } from './export/export.js';
