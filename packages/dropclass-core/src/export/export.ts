import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { layersModelArtifacts, modelJsonOf, resolveHandler } from '../io/artifacts.js';
import { METADATA_KEY } from '../model/metadata.js';
import type { DropClassModel } from '../model/model.js';
import { quantizeFloat16 } from './float16.js';
import { type ExportMetadata, exportMetadata } from './metadata.js';
import { foldBatchNorms } from './fold-batch-norm.js';
import { toStockModel } from './stock-model.js';

/** The weight file of an export written to a directory (one shard; `model.json` names it in its weights manifest). */
export const EXPORT_WEIGHTS = 'group1-shard1of1.bin';

/** Options of {@link exportStockModel}. */
export interface ExportOptions {
  /** Weight quantisation: 'float16' halves the weight file. Default 'none'. */
  quantize?: 'none' | 'float16';
}

/** What {@link exportStockModel} wrote. */
export interface ExportResult {
  metadata: ExportMetadata;
  /** Bytes of the weights. */
  weightBytes: number;
  /** Bytes of the export's `model.json` (topology, metadata and weights manifest) as a file. */
  topologyBytes: number;
}

/**
 * Saves a deployable tfjs Layers model of stock layers only, through a tfjs `IOHandler` or to a URL
 * tfjs routes (`indexeddb://`, `downloads://`, `http(s)://`, ...): the DropClass head folded (SPEC
 * section 4), custom backbone layers rebuilt through their conversions (`registerStockConversion`),
 * each batch norm that follows a conv folded into it with the ReLU after it (one conv with a bias
 * and a ReLU activation; other batch norms stay stock layers in inference mode); the image size rule, class names, palette
 * and normalisation go into the model's user metadata (`dropclass`, an {@link ExportMetadata}). To
 * write `model.json` and {@link EXPORT_WEIGHTS} to a directory in Node: `exportStockModel` of
 * `@dropclass/core/node`.
 */
export async function exportStockModel(model: DropClassModel, handlerOrURL: tf.io.IOHandler | string, options: ExportOptions = {}): Promise<ExportResult> {
  const quantize = options.quantize ?? 'none';
  if (quantize !== 'none' && quantize !== 'float16') throw new Error(`quantize must be 'none' or 'float16', got ${JSON.stringify(quantize)}`);
  const handler = resolveHandler(handlerOrURL, 'save');
  const metadata = exportMetadata(model.info, quantize);
  const folded = model.toFoldedModel();
  try {
    const unfolded = toStockModel(folded);
    let stock: tfl.LayersModel;
    try {
      stock = foldBatchNorms(unfolded);
    } finally {
      unfolded.dispose();
    }
    let artifacts: tf.io.ModelArtifacts;
    try {
      artifacts = await layersModelArtifacts(stock);
    } finally {
      stock.dispose();
    }
    let specs = artifacts.weightSpecs ?? [];
    let data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    if (quantize === 'float16') ({ specs, data } = quantizeFloat16(specs, data));
    const exported: tf.io.ModelArtifacts = {
      modelTopology: artifacts.modelTopology,
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: null,
      userDefinedMetadata: { [METADATA_KEY]: metadata as unknown as object },
      weightSpecs: specs,
      weightData: data,
    };
    await handler.save!(exported);
    const topologyBytes = new TextEncoder().encode(JSON.stringify(modelJsonOf(exported, EXPORT_WEIGHTS))).byteLength;
    return { metadata, weightBytes: data.byteLength, topologyBytes };
  } finally {
    // The folded model shares the backbone's layers with `model`: dispose only the layers it added.
    const shared = new Set(model.network.layers);
    for (const layer of folded.layers) if (!shared.has(layer)) layer.dispose();
  }
}
