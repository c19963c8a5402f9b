import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BN_NEW_BATCH_WEIGHT, updateMovingStatistics } from '../ops/batch-norm.js';
import { layerSeed } from '../rng.js';
import { type PixelLossOptions, isPlainCrossEntropy, pixelLoss } from '../losses/pixel-loss.js';
import { NO_CLASS_DROPPED, averagedImportance } from './importance.js';
import {
  DEFAULT_ALPHA,
  DEFAULT_BN_EPSILON,
  IGNORE_INDEX,
  type DropClassTerms,
  type FeatureSelectionWeights,
  dropClassObjective,
  featureSelection,
  foldFeatureSelection,
  maskedCrossEntropy,
  pointwise,
} from './objective.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type LayerVariable = tfl.LayerVariable;

export interface DropClassHeadConfig extends LayerArgs {
  numClasses: number;
  /** false: a plain 1x1 classifier (the baseline), with no feature-selection layer. */
  dropclass: boolean;
  bnEpsilon?: number;
  /** Weight of the newest batch in the moving statistics (default 0.1; see `updateMovingStatistics`). */
  bnMomentum?: number;
  seed?: number;
}

export interface HeadTrainingOptions {
  labels: tf.Tensor3D;
  droppedClass: number;
  progress: number;
  alpha?: number;
  ignoreIndex?: number;
  /** The pixel loss of the cross-entropy terms; default the plain cross-entropy. */
  loss?: PixelLossOptions;
}

export interface HeadLosses {
  total: tf.Scalar;
  lossCe: tf.Scalar;
  lossDrop: tf.Scalar;
  lossSup: tf.Scalar;
}

/**
 * The DropClass head on top of any backbone's feature map `A`: the 1x1 classifier (`W` `[C,K]`, `b`)
 * and, when DropClass is on, the feature-selection layer (1x1 conv `C->C`, batch norm, ReLU).
 * As a layer it computes the inference path: no class dropped, moving batch-norm statistics.
 */
export class DropClassHead extends tfl.layers.Layer {
  static readonly className = 'DropClassHead';
  readonly numClasses: number;
  readonly dropclass: boolean;
  readonly bnEpsilon: number;
  readonly bnMomentum: number;
  private readonly seed?: number;
  private classifierKernel?: LayerVariable;
  private classifierBias?: LayerVariable;
  private selectionKernel?: LayerVariable;
  private selectionBias?: LayerVariable;
  private gamma?: LayerVariable;
  private beta?: LayerVariable;
  private movingMean?: LayerVariable;
  private movingVariance?: LayerVariable;

  constructor(config: DropClassHeadConfig) {
    super(config);
    if (!Number.isInteger(config.numClasses) || config.numClasses < 2) {
      throw new RangeError(`numClasses must be an integer >= 2, got ${config.numClasses}`);
    }
    this.numClasses = config.numClasses;
    this.dropclass = config.dropclass;
    this.bnEpsilon = config.bnEpsilon ?? DEFAULT_BN_EPSILON;
    this.bnMomentum = config.bnMomentum ?? BN_NEW_BATCH_WEIGHT;
    this.seed = config.seed;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null) throw new Error('DropClassHead needs a known channel count on its input feature map');
    const init = (index: number) => tfl.initializers.glorotUniform({ seed: this.seed === undefined ? undefined : layerSeed(this.seed, index) });
    this.classifierKernel = this.addWeight('classifier_kernel', [channels, this.numClasses], 'float32', init(1));
    this.classifierBias = this.addWeight('classifier_bias', [this.numClasses], 'float32', tfl.initializers.zeros());
    if (this.dropclass) {
      this.selectionKernel = this.addWeight('selection_kernel', [channels, channels], 'float32', init(2));
      this.selectionBias = this.addWeight('selection_bias', [channels], 'float32', tfl.initializers.zeros());
      this.gamma = this.addWeight('selection_gamma', [channels], 'float32', tfl.initializers.ones());
      this.beta = this.addWeight('selection_beta', [channels], 'float32', tfl.initializers.zeros());
      this.movingMean = this.addWeight('selection_moving_mean', [channels], 'float32', tfl.initializers.zeros(), undefined, false);
      this.movingVariance = this.addWeight('selection_moving_variance', [channels], 'float32', tfl.initializers.ones(), undefined, false);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [...shape.slice(0, -1), this.numClasses];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => this.inferenceLogits(Array.isArray(inputs) ? (inputs[0] as tf.Tensor4D) : (inputs as tf.Tensor4D)));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numClasses: this.numClasses,
      dropclass: this.dropclass,
      bnEpsilon: this.bnEpsilon,
      bnMomentum: this.bnMomentum,
      ...(this.seed === undefined ? {} : { seed: this.seed }),
    };
  }

  /** Classifier kernel `W` `[C,K]`. */
  get kernel(): tf.Tensor2D {
    return this.weightOf(this.classifierKernel) as tf.Tensor2D;
  }

  get bias(): tf.Tensor1D {
    return this.weightOf(this.classifierBias) as tf.Tensor1D;
  }

  /** Feature-selection weights; only a DropClass head has them. */
  get selection(): FeatureSelectionWeights {
    if (!this.dropclass) throw new Error('a baseline head (dropclass: false) has no feature-selection layer');
    return {
      kernel: this.weightOf(this.selectionKernel) as tf.Tensor2D,
      bias: this.weightOf(this.selectionBias) as tf.Tensor1D,
      gamma: this.weightOf(this.gamma) as tf.Tensor1D,
      beta: this.weightOf(this.beta) as tf.Tensor1D,
    };
  }

  /** Moving batch-norm statistics of the feature-selection layer. */
  get movingStatistics(): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
    return { mean: this.weightOf(this.movingMean) as tf.Tensor1D, variance: this.weightOf(this.movingVariance) as tf.Tensor1D };
  }

  private weightOf(variable: LayerVariable | undefined): tf.Tensor {
    if (!variable) throw new Error('DropClassHead is not built yet: apply it to a feature map first');
    return variable.read();
  }

  /**
   * Logits of the inference path: `A_drop W + b` with nothing dropped (or `droppedClass`
   * suppressed, for diagnostics) and moving statistics; plain `A W + b` for a baseline head, whose
   * channels are scaled by `s_without_c / s` when a class is suppressed.
   */
  inferenceLogits(features: tf.Tensor4D, droppedClass = NO_CLASS_DROPPED): tf.Tensor4D {
    return tf.tidy(() => {
      if (!this.dropclass) {
        if (droppedClass === NO_CLASS_DROPPED) return pointwise(features, this.kernel, this.bias);
        // A baseline has no feature-selection layer: its channels are damped by how much of their
        // averaged importance the suppressed class carried.
        const kept = tf.div(averagedImportance(this.kernel, droppedClass), tf.add(averagedImportance(this.kernel, NO_CLASS_DROPPED), 1e-12));
        return pointwise(tf.mul(features, kept), this.kernel, this.bias);
      }
      const importance = averagedImportance(this.kernel, droppedClass);
      const { selected } = featureSelection(features, importance, this.selection, this.bnEpsilon, this.movingStatistics);
      return pointwise(selected, this.kernel, this.bias);
    });
  }

  /**
   * The inference path (no class dropped, moving statistics) on a symbolic feature map, built from
   * stock tfjs-layers layers: for a DropClass head, the feature-selection layer with the importance
   * scaling and the batch norm folded into one 1x1 conv + ReLU (`feature_selection`), then the 1x1
   * classifier (`classifier`). Returns the logits; the new layers hold this head's current weights.
   */
  applyFolded(features: tfl.SymbolicTensor): tfl.SymbolicTensor {
    const channels = features.shape[features.shape.length - 1] as number;
    const classifier = tfl.layers.conv2d({ filters: this.numClasses, kernelSize: 1, name: 'classifier' });
    const selection = this.dropclass ? tfl.layers.conv2d({ filters: channels, kernelSize: 1, activation: 'relu', name: 'feature_selection' }) : undefined;
    const selected = selection ? (selection.apply(features) as tfl.SymbolicTensor) : features;
    const logits = classifier.apply(selected) as tfl.SymbolicTensor;
    tf.tidy(() => {
      classifier.setWeights([tf.reshape(this.kernel, [1, 1, channels, this.numClasses]), this.bias]);
      if (selection) {
        const { kernel, bias } = foldFeatureSelection(averagedImportance(this.kernel, NO_CLASS_DROPPED), this.selection, this.bnEpsilon, this.movingStatistics);
        selection.setWeights([tf.reshape(kernel, [1, 1, channels, channels]), bias]);
      }
    });
    return logits;
  }

  /**
   * The training objective on a feature map in training mode. Call it inside a gradient function:
   * it also moves the feature-selection layer's moving statistics toward this batch's.
   */
  trainingLosses(features: tf.Tensor4D, options: HeadTrainingOptions): HeadLosses {
    const ignoreIndex = options.ignoreIndex ?? IGNORE_INDEX;
    if (!this.dropclass) {
      const logits = pointwise(features, this.kernel, this.bias);
      const lossCe = isPlainCrossEntropy(options.loss) ? maskedCrossEntropy(logits, options.labels, ignoreIndex) : pixelLoss(logits, options.labels, { loss: options.loss!, ignoreIndex });
      return { total: lossCe, lossCe, lossDrop: tf.scalar(0), lossSup: tf.scalar(0) };
    }
    const terms: DropClassTerms = dropClassObjective({
      features,
      classifierKernel: this.kernel,
      classifierBias: this.bias,
      selection: this.selection,
      labels: options.labels,
      droppedClass: options.droppedClass,
      progress: options.progress,
      alpha: options.alpha ?? DEFAULT_ALPHA,
      bnEpsilon: this.bnEpsilon,
      ignoreIndex,
      loss: options.loss,
    });
    const moving = { mean: this.movingMean!, variance: this.movingVariance! };
    updateMovingStatistics(moving, terms.batchStatistics, features.shape[0] * features.shape[1] * features.shape[2], this.bnMomentum);
    return { total: terms.total, lossCe: terms.lossCe, lossDrop: terms.lossDrop, lossSup: terms.lossSup };
  }
}

tf.serialization.registerClass(DropClassHead);
