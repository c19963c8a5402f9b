import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { SegmentationBackbone } from '../adapter.js';
import { DropClassHead } from '../dropclass/head.js';
import { NO_CLASS_DROPPED } from '../dropclass/importance.js';
import { DEFAULT_ALPHA, IGNORE_INDEX } from '../dropclass/objective.js';
import { resizeBilinear } from '../dropclass/upsample.js';
import { layersModelArtifacts, resolveHandler, weightGroups } from '../io/artifacts.js';
import { Rng } from '../rng.js';
import { Sgd, type SgdOptions } from '../train/sgd.js';
import { BatchNormalization } from '../layers/batch-norm.js';
import { type PixelLossOptions, checkPixelLoss } from '../losses/pixel-loss.js';
import type { StateDict } from '../weights/safetensors.js';
import { type LoadReport, MODEL_PARTS, type ModelPart, type NamedWeight, type WeightMap, loadStateDict, namedWeights, transferWeights } from '../weights/state-dict.js';
import { MissingBackboneError, NonFiniteLossError } from './errors.js';
import { checkImages, checkLabels } from './input.js';
import { METADATA_KEY, MODEL_FORMAT, type ModelInfo, type ModelMetadata } from './metadata.js';

const HEAD_NAME = 'dropclass_head';

/** Options of {@link DropClassModel.create}: the head, the objective and the optimizer. */
export interface DropClassModelOptions extends SgdOptions {
  /** Classes `K` the head predicts (at least 2). */
  numClasses: number;
  /** Default true; false trains the same network as a plain baseline (cross-entropy only). */
  dropclass?: boolean;
  /** Weight of the suppression term, default 10. */
  alpha?: number;
  /** Seeds the head's initial weights and the draw of the class to drop. */
  seed?: number;
  /** Label of pixels without a class, left out of the losses; default {@link IGNORE_INDEX}, 255. */
  ignoreIndex?: number;
  /** The pixel loss of the cross-entropy terms (class weights, focal, OHEM); default the plain cross-entropy. */
  loss?: PixelLossOptions;
  /** What the application wants saved with the model: class names, palette, normalisation, anything else. */
  metadata?: ModelMetadata;
}

/** Options of one {@link DropClassModel.trainStep}. */
export interface TrainStepOptions {
  /** Training progress `t` in [0,1]: drop probability and loss weight. */
  progress: number;
  learningRate: number;
  /** Forces the class to suppress this step (`-1`: none); otherwise drawn as SPEC section 2 says. */
  droppedClass?: number;
  /** Per-part factors on the learning rate (mmsegmentation's `paramwise_cfg`), e.g. `{ backbone: 0.1 }`; default 1. */
  learningRateMultipliers?: Partial<Record<ModelPart, number>>;
}

/** The loss terms of one training step, as numbers. */
export interface StepLosses {
  /** Cross-entropy of the logits, `CE`. */
  lossCe: number;
  /** Cross-entropy of the logits with the class suppressed, against labels without it, `CE_drop`. */
  lossDrop: number;
  /** Mean probability of the suppressed class after its suppression (0 when none is). */
  lossSup: number;
  /** `(1 - t) CE + t CE_drop + alpha * lossSup`, what the step minimised. */
  total: number;
  /** The class suppressed this step, or -1. */
  droppedClass: number;
}

/**
 * A segmentation network: any backbone followed by the DropClass head. Trains with the DropClass
 * objective or, with `dropclass: false`, as the plain baseline through the same code.
 */
export class DropClassModel {
  /** Image batch -> feature map `A`. */
  readonly features: tfl.LayersModel;
  private readonly optimizer: Sgd;
  private readonly rng: Rng;

  private constructor(
    /** Image batch -> logits at the feature map's resolution (inference path). */
    readonly network: tfl.LayersModel,
    readonly head: DropClassHead,
    readonly info: ModelInfo,
  ) {
    this.features = tfl.model({ inputs: network.inputs, outputs: head.input as tfl.SymbolicTensor, name: `${network.name}_features` });
    this.optimizer = new Sgd({ momentum: info.momentum, weightDecay: info.weightDecay });
    this.rng = new Rng(info.seed);
    this.rng.setState(info.rngState);
  }

  /**
   * Builds a DropClass model (or, with `dropclass: false`, the baseline) on a backbone: the
   * backbone's model followed by a {@link DropClassHead} sized from its feature map's channels.
   * The backbone's layers become the model's; do not dispose them separately.
   */
  static create(backbone: SegmentationBackbone, options: DropClassModelOptions): DropClassModel {
    const { output, channels } = featureMapOf(backbone);
    const seed = options.seed ?? 0;
    const dropclass = options.dropclass ?? true;
    const head = new DropClassHead({ numClasses: options.numClasses, dropclass, seed, name: HEAD_NAME });
    const logits = head.apply(output) as tfl.SymbolicTensor;
    const network = tfl.model({ inputs: backbone.model.inputs, outputs: logits, name: `${backbone.name}_${dropclass ? 'dropclass' : 'baseline'}` });
    const sgd = new Sgd(options);
    if (options.loss) checkPixelLoss(options.loss, options.numClasses);
    const info: ModelInfo = {
      format: MODEL_FORMAT,
      backbone: {
        name: backbone.name,
        channels,
        outputStride: backbone.outputStride,
        inputChannels: backbone.inputChannels,
        inputSizeMultiple: backbone.inputSizeMultiple,
        minInputSize: backbone.minInputSize,
        ...(backbone.source ? { source: backbone.source } : {}),
      },
      numClasses: options.numClasses,
      dropclass,
      alpha: options.alpha ?? DEFAULT_ALPHA,
      seed,
      ignoreIndex: options.ignoreIndex ?? IGNORE_INDEX,
      ...(options.loss ? { loss: options.loss } : {}),
      momentum: sgd.momentum,
      weightDecay: sgd.weightDecay,
      step: 0,
      rngState: seed,
      metadata: options.metadata ?? {},
    };
    return new DropClassModel(network, head, info);
  }

  get numClasses(): number {
    return this.info.numClasses;
  }

  get dropclass(): boolean {
    return this.info.dropclass;
  }

  /** Training steps taken (restored by `load`). */
  get step(): number {
    return this.info.step;
  }

  get trainableVariables(): tf.Variable[] {
    return this.network.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** Trainable parameters, the figure papers quote. */
  countParams(): number {
    return this.network.trainableWeights.reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0);
  }

  /** Draws the class to suppress: one class uniformly, dropped with probability `progress`. */
  private drawDroppedClass(progress: number): number {
    if (!this.info.dropclass) return NO_CLASS_DROPPED;
    const candidate = this.rng.int(this.info.numClasses);
    return this.rng.next() < progress ? candidate : NO_CLASS_DROPPED;
  }

  /** One optimisation step on a batch; returns the three loss terms and the total. */
  trainStep(images: tf.Tensor4D, labels: tf.Tensor3D, options: TrainStepOptions): StepLosses {
    checkImages(this.info.backbone, images);
    checkLabels(images, labels);
    const drawn = this.drawDroppedClass(options.progress);
    const droppedClass = options.droppedClass ?? drawn;
    const variables = this.trainableVariables;
    let terms: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const features = this.features.apply(images, { training: true }) as tf.Tensor4D;
      const intLabels = labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32');
      const losses = this.head.trainingLosses(features, {
        labels: intLabels,
        droppedClass,
        progress: options.progress,
        alpha: this.info.alpha,
        ignoreIndex: this.info.ignoreIndex,
        loss: this.info.loss,
      });
      terms = [losses.lossCe, losses.lossDrop, losses.lossSup].map((t) => tf.keep(t));
      return losses.total;
    }, variables);
    const stacked = tf.stack([...terms, value]);
    const [lossCe, lossDrop, lossSup, total] = Array.from(stacked.dataSync());
    tf.dispose([stacked, value, ...terms]);
    const losses: StepLosses = { lossCe, lossDrop, lossSup, total, droppedClass };
    if (![lossCe, lossDrop, lossSup, total].every(Number.isFinite)) {
      tf.dispose(grads);
      throw new NonFiniteLossError(this.info.step, losses);
    }
    const weights = this.network.trainableWeights;
    const multipliers = options.learningRateMultipliers ?? {};
    this.optimizer.step(
      weights.map((w, i) => ({ key: w.originalName, variable: variables[i], gradient: grads[variables[i].name], learningRateScale: multipliers[this.partOf(w.originalName)] ?? 1 })),
      options.learningRate,
    );
    tf.dispose(grads);
    this.info.step += 1;
    this.info.rngState = this.rng.getState();
    return losses;
  }

  /** The part a weight belongs to, by its tfjs name: the head's classifier or feature selection, else the backbone. */
  partOf(weightName: string): ModelPart {
    const prefix = `${this.head.name}/`;
    if (!weightName.startsWith(prefix)) return 'backbone';
    return weightName.slice(prefix.length).startsWith('selection') ? 'selection' : 'classifier';
  }

  /** Every weight (moving statistics included) under its PyTorch-style key, with its part (see `namedWeights`). */
  namedWeights(): NamedWeight[] {
    return namedWeights(
      this.network.layers.flatMap((layer) => layer.weights),
      (name) => this.partOf(name),
    );
  }

  /**
   * Fills the `parts` of this model from a PyTorch state dict (read with `parseSafetensors`), its
   * keys put onto this model's by `map` (the backbone adapter's `torchWeights`), strictly: a
   * {@link WeightMismatchError} lists every missing, unexpected and mismatched key, and nothing is
   * written then. `source` names the file in messages and the report.
   */
  loadStateDict(dict: StateDict, options: { source: string; map: WeightMap; parts?: readonly ModelPart[] }): LoadReport {
    const parts = this.checkParts(options.parts ?? ['backbone', 'classifier'], options.source);
    return loadStateDict(this.namedWeights(), dict, { source: options.source, map: options.map, parts });
  }

  /**
   * Fills the `parts` of this model (default backbone and classifier) from another model built by
   * the same backbone adapter (a finished run, a saved model): its weights and moving statistics,
   * not its optimizer state or step. A DropClass model started from a baseline gets a new
   * feature-selection layer. Throws a {@link WeightMismatchError} when the networks differ.
   */
  loadWeightsFrom(source: DropClassModel, options: { source: string; parts?: readonly ModelPart[] }): LoadReport {
    const parts = this.checkParts(options.parts ?? ['backbone', 'classifier'], options.source);
    const [from, to] = [source.info.backbone, this.info.backbone];
    if (from.source && to.source && from.source.kind !== to.source.kind) {
      throw new Error(`${options.source} holds a ${from.source.kind} backbone, this model a ${to.source.kind} backbone; start from a model of the same backbone kind`);
    }
    if (parts.includes('selection') && !source.dropclass) {
      throw new Error(`${options.source} is a baseline model, with no feature-selection layer to load; leave "selection" out of the parts`);
    }
    return transferWeights({ label: options.source, weights: source.namedWeights() }, this.namedWeights(), parts);
  }

  private checkParts(parts: readonly ModelPart[], source: string): readonly ModelPart[] {
    const unknown = parts.filter((p) => !MODEL_PARTS.includes(p));
    if (unknown.length) throw new RangeError(`${source}: unknown part(s) ${unknown.map((p) => JSON.stringify(p)).join(', ')} to load; the parts are ${MODEL_PARTS.join(', ')}`);
    if (parts.includes('selection') && !this.dropclass) {
      throw new RangeError(`${source}: this model is a baseline (dropclass: false) and has no feature-selection layer; leave "selection" out of the parts`);
    }
    return parts;
  }

  /**
   * With `true`, the backbone's batch norms run in inference mode during training: they normalise
   * with their moving statistics and do not update them, while their scale and offset still train
   * (mmsegmentation's `norm_eval`, for fine-tuning with small batches). Every batch norm of the
   * backbone must be core's (`batchNormalization`, which `convBnRelu` builds).
   */
  setBackboneNormFrozen(frozen: boolean): void {
    const norms = this.features.layers.filter((l) => /BatchNormalization/.test(l.getClassName()));
    const foreign = norms.filter((l) => !(l instanceof BatchNormalization));
    if (foreign.length) {
      throw new Error(
        `the ${this.info.backbone.name} backbone has batch norms that cannot be frozen (${foreign.map((l) => `${l.name}: ${l.getClassName()}`).slice(0, 5).join(', ')}); ` +
          "build them with @dropclass/core's batchNormalization() (convBnRelu does) to freeze their statistics",
      );
    }
    for (const layer of norms as BatchNormalization[]) layer.frozenStatistics = frozen;
  }

  /**
   * Logits of the inference path (nothing dropped, moving statistics), upsampled bilinearly to the
   * input size. With `droppedClass`, that class's features are suppressed (for diagnostics).
   */
  predictLogits(images: tf.Tensor4D, droppedClass = NO_CLASS_DROPPED): tf.Tensor4D {
    checkImages(this.info.backbone, images);
    return tf.tidy(() => {
      const features = this.features.apply(images, { training: false }) as tf.Tensor4D;
      const logits = this.head.inferenceLogits(features, droppedClass);
      return resizeBilinear(logits, images.shape[1], images.shape[2]);
    });
  }

  /** Class map `[B,H,W]` (int32) at the input size. */
  predict(images: tf.Tensor4D, droppedClass = NO_CLASS_DROPPED): tf.Tensor3D {
    return tf.tidy(() => tf.argMax(this.predictLogits(images, droppedClass), -1) as tf.Tensor3D);
  }

  /**
   * A deployable network (image -> logits at feature resolution) with the importance scaling and the
   * batch norm folded into one 1x1 conv + ReLU before the classifier (SPEC section 4).
   */
  toFoldedModel(): tfl.LayersModel {
    const logits = this.head.applyFolded(this.head.input as tfl.SymbolicTensor);
    return tfl.model({ inputs: this.network.inputs, outputs: logits, name: `${this.network.name}_folded` });
  }

  /**
   * The optimizer's momentum buffers, keyed by each trainable weight's `originalName` (absent before
   * the weight's first step, when the buffer is zero). The tensors stay the model's: read, do not
   * dispose.
   */
  momentumBuffers(): tf.NamedTensorMap {
    return this.optimizer.getState();
  }

  /**
   * Saves the model through a tfjs `IOHandler`, or to a URL tfjs routes (`indexeddb://`,
   * `localstorage://`, `downloads://`, `http(s)://`), as tfjs-layers' `LayersModel.save` does: the
   * network's topology and weights, the optimizer's momentum buffers (weights of group
   * `'optimizer'`) and the {@link ModelInfo} (`userDefinedMetadata.dropclass`). To save to a
   * directory in Node: `saveModel(model, dir)` of `@dropclass/core/node`.
   */
  async save(handlerOrURL: tf.io.IOHandler | string): Promise<tf.io.SaveResult> {
    const handler = resolveHandler(handlerOrURL, 'save');
    const network = await layersModelArtifacts(this.network);
    const optimizer = await tf.io.encodeWeights(this.optimizer.getState(), 'optimizer');
    return handler.save!({
      ...network,
      weightSpecs: [...(network.weightSpecs ?? []), ...optimizer.specs],
      weightData: tf.io.CompositeArrayBuffer.join([tf.io.CompositeArrayBuffer.join(network.weightData), optimizer.data]),
      userDefinedMetadata: { ...network.userDefinedMetadata, [METADATA_KEY]: JSON.parse(JSON.stringify(this.info)) as object },
    });
  }

  /**
   * Loads a model saved by `save`, through a tfjs `IOHandler` or from a URL tfjs routes. Custom
   * layers of the backbone must be registered first, which importing its adapter package does; when
   * one is not, a {@link MissingBackboneError} names the package to install (from the saved
   * `backbone.source`) instead of tfjs's "Unknown layer". `source` names the model in error
   * messages (default: the URL given). From a directory in Node: `loadModel(dir)` of
   * `@dropclass/core/node`.
   */
  static async load(handlerOrURL: tf.io.IOHandler | string, options: { source?: string } = {}): Promise<DropClassModel> {
    const handler = resolveHandler(handlerOrURL, 'load');
    const source = options.source ?? (typeof handlerOrURL === 'string' ? handlerOrURL : 'the saved model');
    const artifacts = await handler.load!();
    const info = artifacts.userDefinedMetadata?.[METADATA_KEY] as ModelInfo | undefined;
    if (!info) throw new Error(`${source} holds no DropClass model information (userDefinedMetadata.${METADATA_KEY}): it was not saved by DropClassModel.save`);
    if (info.format !== MODEL_FORMAT) {
      throw new Error(`${source}: format ${JSON.stringify(info.format)} is not ${MODEL_FORMAT}`);
    }
    info.metadata ??= {};
    const groups = weightGroups(artifacts);
    const { userDefinedMetadata: _, ...rest } = artifacts;
    const network = await tfl.loadLayersModel(tf.io.fromMemory({ ...rest, weightSpecs: groups.model.specs, weightData: groups.model.data })).catch((error: Error) => {
      throw missingBackboneError(source, info, error);
    });
    const head = network.layers.find((l): l is DropClassHead => l instanceof DropClassHead);
    if (!head) {
      network.dispose();
      throw new Error(`${source} has no ${DropClassHead.className} layer`);
    }
    const model = new DropClassModel(network, head, info);
    if (groups.optimizer.specs.length) {
      const state = tf.io.decodeWeights(groups.optimizer.data, groups.optimizer.specs);
      model.optimizer.setState(state);
      tf.dispose(Object.values(state));
    }
    return model;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.network.dispose();
  }
}

/**
 * The backbone model's one output and its channel count `C`, read from the output shape; a clear
 * error when the model has several outputs, or one that is not `[B, H, W, C]` with a known `C`.
 */
function featureMapOf(backbone: SegmentationBackbone): { output: tfl.SymbolicTensor; channels: number } {
  const outputs = backbone.model.outputs;
  const shapes = outputs.map((o) => `[${o.shape.map((d) => d ?? 'null').join(', ')}]`).join(', ');
  if (outputs.length !== 1) {
    throw new Error(`the ${backbone.name} backbone's model has ${outputs.length} outputs (${shapes}); it must output one feature map [B, H, W, C]`);
  }
  const shape = outputs[0].shape;
  const channels = shape[shape.length - 1];
  if (shape.length !== 4 || channels == null || !(channels > 0)) {
    throw new Error(
      `the ${backbone.name} backbone's model outputs ${shapes}; it must output a feature map [B, H, W, C] whose channel count C is known ` +
        'when the model is built (end it with a layer of fixed width, e.g. a conv with a set number of filters)',
    );
  }
  return { output: outputs[0], channels };
}

function missingBackboneError(file: string, info: ModelInfo, error: Error): Error {
  const unknown = /Unknown layer: ([\w$>]+)/.exec(error.message ?? '');
  if (!unknown) return error;
  const layer = unknown[1];
  const source = info.backbone.source;
  if (source?.package) {
    return new MissingBackboneError(
      `${file}: layer ${layer} of the ${source.kind} backbone is not registered. This model needs ${source.package}: ` +
        `npm install ${source.package}, then import it before loading (the dropclass command line imports it by itself)`,
      source.package,
      layer,
    );
  }
  return new MissingBackboneError(
    `${file}: layer ${layer} of the ${info.backbone.name} backbone is not registered, and the model does not record which package defines it; ` +
      `import the backbone's adapter package (which registers its layers) before loading`,
    undefined,
    layer,
  );
}
