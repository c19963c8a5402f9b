import { NO_CLASS_DROPPED, type DropClassModel } from '@dropclass/core';
import { type PairedDataset, type Rgb, createEvalStream, openDataset } from '@dropclass/datasets';
import { type ConfusionMatrix, PerImageConfusion, type SegmentationResult } from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from './config.js';
import type { TrainingData } from './data.js';

export interface EvalOptions {
  batchSize?: number;
  mean: Rgb;
  std: Rgb;
  /** Evaluate with this class's class-specific features suppressed (dependency diagnostic). */
  droppedClass?: number;
}

/** Whole images are padded up to a multiple of this, the smallest that is also a size the backbone takes. */
export function paddingMultiple(model: DropClassModel): number {
  const { inputSizeMultiple, minInputSize } = model.info.backbone;
  return Math.ceil(minInputSize / inputSizeMultiple) * inputSizeMultiple;
}

/** prediction -> confusion matrix, over a whole split, images padded to a size the backbone takes. */
export async function evaluateDataset(model: DropClassModel, ds: PairedDataset, options: EvalOptions): Promise<ConfusionMatrix> {
  return (await evaluatePerImage(model, ds, options)).total();
}

/** prediction -> one confusion matrix per image (in the split's order), for bootstrap intervals over images. */
export async function evaluatePerImage(model: DropClassModel, ds: PairedDataset, options: EvalOptions): Promise<PerImageConfusion> {
  const perImage = new PerImageConfusion(model.numClasses, model.info.ignoreIndex);
  for await (const batch of createEvalStream(ds, { batchSize: options.batchSize ?? 8, padToMultiple: paddingMultiple(model), mean: options.mean, std: options.std })) {
    const prediction = model.predict(batch.images, options.droppedClass ?? NO_CLASS_DROPPED);
    perImage.addBatch(prediction.dataSync() as Int32Array, batch.labels.dataSync() as Int32Array, batch.images.shape[0]);
    tf.dispose([prediction, batch.images, batch.labels]);
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
    const ds = await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split });
    if (ds.classNames.length !== data.numClasses) throw new Error(`split ${split} has ${ds.classNames.length} classes, the training split ${data.numClasses}`);
    const perImage = await evaluatePerImage(model, ds, { mean: config.mean, std: config.std });
    const matrix = perImage.total();
    out.perImage[split] = perImage;
    out.matrices[split] = matrix;
    out.results[split] = matrix.result();
    out.summary[split] = { mIoU: out.results[split].mIoU, pixelAccuracy: out.results[split].pixelAccuracy };
  }
  log(`evaluated ${Object.keys(out.results).join(', ')}`);
  return out;
}
