import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type DropClassModel, EXPORT_FORMAT, EXPORT_WEIGHTS, type ExportMetadata, readExportMetadata } from '@dropclass/core';
import { MODEL_INFO_FILE, MODEL_JSON, exportStockModel, fileSystemHandler } from '@dropclass/core/node';
import { type PairedDataset, createEvalStream } from '@dropclass/datasets';
import { ConfusionMatrix } from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { evaluateDataset } from './evaluate.js';

/** A model written by `dropclass export`, loaded with tfjs-layers, and its metadata. */
export interface LoadedExport {
  model: tfl.LayersModel;
  metadata: ExportMetadata;
}

export async function loadExport(dir: string): Promise<LoadedExport> {
  const model = await tfl.loadLayersModel(fileSystemHandler(dir));
  const metadata = readExportMetadata(model);
  if (!metadata) {
    model.dispose();
    throw new Error(`${join(dir, MODEL_JSON)} has no ${EXPORT_FORMAT} metadata (userDefinedMetadata.dropclass): it was not written by dropclass export`);
  }
  return { model, metadata };
}

/**
 * Logits at the input size of an exported model for a normalised batch whose size the model takes,
 * following the metadata's output rule (bilinear with half-pixel centres when the stride is above 1).
 */
export function exportLogits(loaded: LoadedExport, images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const logits = loaded.model.predict(images) as tf.Tensor4D;
    if (loaded.metadata.output.stride === 1) return logits;
    return tf.image.resizeBilinear(logits, [images.shape[1], images.shape[2]], false, true);
  });
}

/** Confusion matrix of an exported model over a split, images padded as `evaluateDataset` pads them. */
export async function evaluateExport(loaded: LoadedExport, ds: PairedDataset, ignoreIndex: number): Promise<ConfusionMatrix> {
  const { metadata } = loaded;
  const matrix = new ConfusionMatrix(metadata.numClasses, { ignoreIndex });
  const stream = createEvalStream(ds, { batchSize: 1, padToMultiple: metadata.input.sizeMultiple, mean: metadata.input.mean, std: metadata.input.std });
  for await (const batch of stream) {
    const prediction = tf.tidy(() => tf.argMax(exportLogits(loaded, batch.images), -1));
    matrix.update(prediction.dataSync() as Int32Array, batch.labels.dataSync() as Int32Array);
    tf.dispose([prediction, batch.images, batch.labels]);
  }
  return matrix;
}

export interface ExportReport {
  out: string;
  quantization: 'none' | 'float16';
  weightBytes: number;
  /** Weight bytes of the float32 export, when the export is quantised (measured, not estimated). */
  float32WeightBytes?: number;
  /** mIoU on the evaluation split: the training model, the float32 export, the written export. */
  mIoU?: { split: string; model: number; float32: number; exported: number };
}

export interface ExportCommandOptions {
  out: string;
  quantize: 'none' | 'float16';
  /** Evaluate on this split to report the mIoU (and the change from quantisation). */
  evaluation?: { split: string; dataset: PairedDataset };
  /** Scratch directory for the float32 export a quantised export is compared with. */
  scratch: string;
}

/** Exports, and measures what the export costs: weight bytes and mIoU, float32 against float16. */
export async function exportModel(model: DropClassModel, options: ExportCommandOptions): Promise<ExportReport> {
  const written = await exportStockModel(model, options.out, { quantize: options.quantize });
  const report: ExportReport = { out: options.out, quantization: options.quantize, weightBytes: written.weightBytes };
  let float32Dir = options.out;
  if (options.quantize !== 'none') {
    float32Dir = options.scratch;
    report.float32WeightBytes = (await exportStockModel(model, float32Dir)).weightBytes;
  }
  if (options.evaluation) {
    const { split, dataset } = options.evaluation;
    const { ignoreIndex } = model.info;
    const { mean, std } = written.metadata.input;
    const modelIoU = (await evaluateDataset(model, dataset, { mean, std })).result().mIoU;
    const miou = async (dir: string) => {
      const loaded = await loadExport(dir);
      try {
        return (await evaluateExport(loaded, dataset, ignoreIndex)).result().mIoU;
      } finally {
        loaded.model.dispose();
      }
    };
    const float32 = await miou(float32Dir);
    report.mIoU = { split, model: modelIoU, float32, exported: options.quantize === 'none' ? float32 : await miou(options.out) };
  }
  return report;
}

export function formatExportReport(report: ExportReport): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const pct = (v: number) => (100 * v).toFixed(2);
  const signed = (v: number) => (Math.abs(v) < 5e-5 ? '0.0000' : `${v > 0 ? '+' : ''}${v.toFixed(4)}`);
  const lines = [`wrote ${join(report.out, 'model.json')} and ${join(report.out, EXPORT_WEIGHTS)} (${kb(report.weightBytes)} of ${report.quantization === 'float16' ? 'float16' : 'float32'} weights)`];
  if (report.float32WeightBytes !== undefined) {
    const saved = 1 - report.weightBytes / report.float32WeightBytes;
    lines.push(`weights: float32 ${kb(report.float32WeightBytes)} -> float16 ${kb(report.weightBytes)} (${(100 * saved).toFixed(1)}% smaller)`);
  }
  if (report.mIoU) {
    const { split, model, float32, exported } = report.mIoU;
    lines.push(`mIoU on ${split}: training model ${pct(model)}%, float32 export ${pct(float32)}%`);
    if (report.quantization !== 'none') lines.push(`mIoU on ${split}: float16 export ${pct(exported)}% (change ${signed(100 * (exported - float32))} points from float32)`);
  }
  return lines.join('\n');
}

/** Refuses to export over something that is not an earlier export. */
export async function checkExportTarget(out: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) throw new Error(`--out ${out} is a file; give a directory for model.json and its weights`);
  const hasModel = await stat(join(out, MODEL_INFO_FILE)).then(() => true, () => false);
  if (hasModel) throw new Error(`--out ${out} holds a saved training model (${MODEL_INFO_FILE}); give another directory for the export`);
}
