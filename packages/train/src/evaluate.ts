import { type DropClassModel, type InferenceOptions, NO_CLASS_DROPPED, checkInferenceOptions, inferClasses, paddedInputSize } from '@dropclass/core';
import { type Batch, type PairedDataset, type Rgb, createEvalStream, openDataset } from '@dropclass/datasets';
import { type ConfusionMatrix, PerImageConfusion, type SegmentationResult } from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from './config.js';
import type { TrainingData } from './data.js';

export interface EvalOptions {
  /** Images of the same size predicted together (default 4); with a sliding window, always 1. */
  batchSize?: number;
  mean: Rgb;
  std: Rgb;
  /** Evaluate with this class's class-specific features suppressed (dependency diagnostic). */
  droppedClass?: number;
  /** Sliding window and test-time augmentation; default one pass on the whole (padded) image. */
  inference?: InferenceOptions;
}

/** A size multiple every padded batch is valid at: the backbone's multiple, raised to cover its minimum size. */
export function paddingMultiple(model: DropClassModel): number {
  return paddedInputSize(1, model.info.backbone);
}

const sameSize = (a: Batch, b: Batch) => a.images.shape[1] === b.images.shape[1] && a.images.shape[2] === b.images.shape[2];

/**
 * prediction -> confusion matrix, over a whole split of images of any mix of sizes: consecutive
 * images of one size are predicted together (padded to a size the backbone takes, cropped back),
 * or one by one window by window with `inference.window`.
 */
export async function evaluateDataset(model: DropClassModel, ds: PairedDataset, options: EvalOptions): Promise<ConfusionMatrix> {
  return (await evaluatePerImage(model, ds, options)).total();
}

/**
 * prediction -> one confusion matrix per image (in the split's order, for bootstrap intervals over
 * images), over a whole split of images of any mix of sizes: consecutive images of one size are
 * predicted together (padded to a size the backbone takes, cropped back), or one by one window by
 * window with `inference.window`.
 */
export async function evaluatePerImage(model: DropClassModel, ds: PairedDataset, options: EvalOptions): Promise<PerImageConfusion> {
  const inference = checkInferenceOptions({ ...options.inference, droppedClass: options.droppedClass ?? NO_CLASS_DROPPED }, model.info.backbone);
  const group = inference.window ? 1 : (options.batchSize ?? 4);
  const perImage = new PerImageConfusion(model.numClasses, model.info.ignoreIndex);
  let pending: Batch[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const batches = pending;
    pending = [];
    const images = batches.length === 1 ? batches[0].images : tf.concat(batches.map((b) => b.images));
    const labels = batches.length === 1 ? batches[0].labels : tf.concat(batches.map((b) => b.labels));
    try {
      const prediction = inferClasses(model, images as tf.Tensor4D, inference);
      perImage.addBatch(prediction.dataSync() as Int32Array, labels.dataSync() as Int32Array, batches.length);
      prediction.dispose();
    } finally {
      tf.dispose([images, labels, ...batches.flatMap((b) => [b.images, b.labels])]);
    }
  };
  try {
    for await (const batch of createEvalStream(ds, { batchSize: 1, mean: options.mean, std: options.std })) {
      if (pending.length > 0 && !sameSize(pending[0], batch)) flush();
      pending.push(batch);
      if (pending.length >= group) flush();
    }
    flush();
  } finally {
    tf.dispose(pending.flatMap((b) => [b.images, b.labels]));
  }
  return perImage;
}

export interface SplitEvaluation {
  matrices: Record<string, ConfusionMatrix>;
  perImage: Record<string, PerImageConfusion>;
  results: Record<string, SegmentationResult>;
  summary: Record<string, { mIoU: number; pixelAccuracy: number }>;
}

export async function evaluateSplits(model: DropClassModel, config: RunConfig, data: TrainingData, log: (line: string) => void): Promise<SplitEvaluation> {
  const out: SplitEvaluation = { matrices: {}, perImage: {}, results: {}, summary: {} };
  for (const split of config.dataset.evalSplits) {
    // The split as checked before the run (without its bad samples, with dataset.skipBad).
    const ds = data.evalSets?.[split] ?? (await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split }));
    if (ds.classNames.length !== data.numClasses) throw new Error(`split ${split} has ${ds.classNames.length} classes, the training split ${data.numClasses}`);
    log(`evaluating ${split} (${ds.length} images)`);
    const perImage = await evaluatePerImage(model, ds, { mean: config.mean, std: config.std, batchSize: config.evalBatchSize, inference: config.inference });
    const matrix = perImage.total();
    out.perImage[split] = perImage;
    out.matrices[split] = matrix;
    out.results[split] = matrix.result();
    out.summary[split] = { mIoU: out.results[split].mIoU, pixelAccuracy: out.results[split].pixelAccuracy };
  }
  log(`evaluated ${Object.keys(out.results).join(', ')}`);
  return out;
}
