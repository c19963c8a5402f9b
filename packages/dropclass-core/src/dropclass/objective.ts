import * as tf from '@tensorflow/tfjs-core';
import { batchNormInTraining } from '../ops/batch-norm.js';
import { NO_CLASS_DROPPED, averagedImportance } from './importance.js';
import { resizeBilinear } from './upsample.js';
import { component, softmaxLosses } from '../ops/softmax-losses.js';
import { type PixelLossOptions, isPlainCrossEntropy, pixelLoss } from '../losses/pixel-loss.js';

export const DEFAULT_ALPHA = 10;
export const DEFAULT_BN_EPSILON = 1e-5;
/** Label of pixels without a class: ignored by the losses (the default `ignoreIndex`). */
export const IGNORE_INDEX = 255;

/** A 1x1 convolution over NHWC written as one matrix product: `[B,H,W,Cin] x [Cin,Cout] + [Cout]`. */
export function pointwise(x: tf.Tensor4D, kernel: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const out = tf.add(tf.matMul(tf.reshape(x, [b * h * w, c]), kernel), bias);
  return tf.reshape(out, [b, h, w, kernel.shape[1]]) as tf.Tensor4D;
}

/**
 * Mean softmax cross-entropy over the pixels labelled with a class (0..K-1) other than `ignoreIndex`
 * and `excludedClass`; 0 (not NaN) when no pixel counts. Logits coarser than the labels are
 * upsampled bilinearly first.
 */
export function maskedCrossEntropy(logits: tf.Tensor4D, labels: tf.Tensor3D, ignoreIndex = IGNORE_INDEX, excludedClass = NO_CLASS_DROPPED): tf.Scalar {
  return tf.tidy(() => {
    const sized = atLabelSize(logits, labels) ? logits : resizeBilinear(logits, labels.shape[1], labels.shape[2]);
    return component(softmaxLosses(sized, labels, { ignoreIndex, excludedClass, suppressedClass: NO_CLASS_DROPPED }), 0);
  });
}

/** The suppression term `mean p(z)` over every position of the logits, at their own resolution. */
function suppression(logitsDrop: tf.Tensor4D, droppedClass: number, ignoreIndex: number): tf.Scalar {
  return component(softmaxLosses(logitsDrop, undefined, { ignoreIndex, excludedClass: NO_CLASS_DROPPED, suppressedClass: droppedClass }), 1);
}

function atLabelSize(logits: tf.Tensor4D, labels: tf.Tensor3D): boolean {
  return logits.shape[1] === labels.shape[1] && logits.shape[2] === labels.shape[2];
}

/** Weights of the feature-selection layer: 1x1 conv `C->C` with bias, then batch norm. */
export interface FeatureSelectionWeights {
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

/** Batch norm statistics: of the batch in training, the moving ones at inference. */
export interface NormStatistics {
  mean: tf.Tensor;
  variance: tf.Tensor;
}

/**
 * The feature-selection layer: `relu(BN(conv1x1(A * s)))`. With `statistics` omitted the batch's
 * own mean and biased variance are used (training mode) and returned for the moving averages.
 */
export function featureSelection(
  features: tf.Tensor4D,
  importance: tf.Tensor1D,
  weights: FeatureSelectionWeights,
  bnEpsilon: number,
  statistics?: NormStatistics,
): { selected: tf.Tensor4D; batchStatistics?: NormStatistics } {
  // conv1x1(A * s) with the scaling moved onto the kernel rows, diag(s) Ws: the same sum, without
  // scaling the whole feature map (and its gradient) channel by channel.
  const conv = pointwise(features, tf.mul(weights.kernel, tf.reshape(importance, [-1, 1])) as tf.Tensor2D, weights.bias);
  if (statistics) {
    const normed = tf.batchNorm(conv, statistics.mean, statistics.variance, weights.beta, weights.gamma, bnEpsilon);
    return { selected: tf.relu(normed) as tf.Tensor4D };
  }
  const { y, mean, variance } = batchNormInTraining(conv, weights.gamma, weights.beta, bnEpsilon, { relu: true });
  return { selected: y as tf.Tensor4D, batchStatistics: { mean, variance } };
}

/**
 * The feature-selection layer of the inference path (`statistics` the moving ones) as one 1x1 conv
 * `C->C` followed by a ReLU: `relu(A kernel + bias)` equals `featureSelection(A, importance, weights,
 * bnEpsilon, statistics).selected`. The importance scaling goes onto the kernel's rows and the batch
 * norm onto its columns and the bias (SPEC section 4).
 */
export function foldFeatureSelection(
  importance: tf.Tensor1D,
  weights: FeatureSelectionWeights,
  bnEpsilon: number,
  statistics: NormStatistics,
): { kernel: tf.Tensor2D; bias: tf.Tensor1D } {
  return tf.tidy(() => {
    const scale = tf.div(weights.gamma, tf.sqrt(tf.add(statistics.variance, bnEpsilon)));
    const kernel = tf.mul(tf.mul(weights.kernel, tf.reshape(importance, [-1, 1])), tf.reshape(scale, [1, -1])) as tf.Tensor2D;
    const bias = tf.add(tf.mul(tf.sub(weights.bias, statistics.mean), scale), weights.beta) as tf.Tensor1D;
    return { kernel, bias };
  });
}

export interface DropClassInputs {
  /** Feature map `A` `[B,H,W,C]`. */
  features: tf.Tensor4D;
  /** Classifier kernel `W` `[C,K]` and bias `b` `[K]`. */
  classifierKernel: tf.Tensor2D;
  classifierBias: tf.Tensor1D;
  selection: FeatureSelectionWeights;
  /** Labels `[B,H',W']`, ignore index for pixels without a label. */
  labels: tf.Tensor3D;
  /** Class suppressed this step, or `NO_CLASS_DROPPED`. */
  droppedClass: number;
  /** Training progress `t` in [0,1]. */
  progress: number;
  alpha?: number;
  bnEpsilon?: number;
  ignoreIndex?: number;
  /** The pixel loss of `CE` and `CE_drop` (class weights, focal, OHEM); default the plain cross-entropy. */
  loss?: PixelLossOptions;
}

export interface DropClassTerms {
  logits: tf.Tensor4D;
  logitsDrop: tf.Tensor4D;
  importance: tf.Tensor1D;
  lossCe: tf.Scalar;
  lossDrop: tf.Scalar;
  lossSup: tf.Scalar;
  total: tf.Scalar;
  batchStatistics: NormStatistics;
}

/**
 * SPEC sections 1-3: class importance, suppression of the dropped class, feature selection and the
 * three-term objective `(1-t) CE + t CE_drop + alpha * mean softmax(logitsDrop)[z]`.
 * Call inside `tf.tidy` (or a gradient function); every returned tensor belongs to that scope.
 */
export function dropClassObjective(inputs: DropClassInputs): DropClassTerms {
  const { features, classifierKernel, classifierBias, selection, labels, droppedClass, progress } = inputs;
  const alpha = inputs.alpha ?? DEFAULT_ALPHA;
  const bnEpsilon = inputs.bnEpsilon ?? DEFAULT_BN_EPSILON;
  const ignoreIndex = inputs.ignoreIndex ?? IGNORE_INDEX;
  if (!(progress >= 0 && progress <= 1)) {
    throw new RangeError(`progress must be in [0, 1] (current step / total steps), got ${progress}`);
  }
  const importance = averagedImportance(classifierKernel, droppedClass);
  const { selected, batchStatistics } = featureSelection(features, importance, selection, bnEpsilon);
  const logits = pointwise(features, classifierKernel, classifierBias);
  const logitsDrop = pointwise(selected, classifierKernel, classifierBias);
  const dropped = droppedClass !== NO_CLASS_DROPPED;
  let lossCe: tf.Scalar;
  let lossDrop: tf.Scalar;
  let lossSup: tf.Scalar;
  if (!isPlainCrossEntropy(inputs.loss)) {
    // Another pixel loss for both cross-entropy terms; the suppression term as always.
    lossCe = pixelLoss(logits, labels, { loss: inputs.loss!, ignoreIndex });
    lossDrop = pixelLoss(logitsDrop, labels, { loss: inputs.loss!, ignoreIndex, excludedClass: droppedClass });
    lossSup = dropped ? suppression(logitsDrop, droppedClass, ignoreIndex) : tf.scalar(0);
  } else if (atLabelSize(logitsDrop, labels)) {
    // CE_drop leaves out the pixels of the dropped class z. At the labels' size one op gives CE_drop
    // and the suppression term mean p_drop(z) from one softmax; coarser logits are upsampled for
    // CE_drop only, the suppression term stays at their own size.
    lossCe = maskedCrossEntropy(logits, labels, ignoreIndex);
    const losses = softmaxLosses(logitsDrop, labels, { ignoreIndex, excludedClass: droppedClass, suppressedClass: droppedClass });
    [lossDrop, lossSup] = [component(losses, 0), component(losses, 1)];
  } else {
    lossCe = maskedCrossEntropy(logits, labels, ignoreIndex);
    lossDrop = maskedCrossEntropy(logitsDrop, labels, ignoreIndex, droppedClass);
    lossSup = dropped ? suppression(logitsDrop, droppedClass, ignoreIndex) : tf.scalar(0);
  }
  const total = tf.addN([tf.mul(lossCe, 1 - progress), tf.mul(lossDrop, progress), tf.mul(lossSup, alpha)]) as tf.Scalar;
  return { logits, logitsDrop, importance, lossCe, lossDrop, lossSup, total, batchStatistics: batchStatistics! };
}
