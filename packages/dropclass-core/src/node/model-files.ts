import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EXPORT_WEIGHTS, type ExportOptions, type ExportResult, exportStockModel as exportThroughHandler } from '../export/export.js';
import { MODEL_FORMAT, type ModelInfo } from '../model/metadata.js';
import { DropClassModel } from '../model/model.js';
import { MODEL_INFO_FILE, MODEL_JSON, fileSystemHandler } from './file-system.js';

/**
 * Saves a model to a directory: `model.json` and `weights.bin` (the network), `optimizer.json` and
 * `optimizer.bin` (the optimizer state), then {@link MODEL_INFO_FILE} (its `ModelInfo`), last, so
 * that a directory that has it holds a complete model. `model.save(fileSystemHandler(dir))`.
 */
export async function saveModel(model: DropClassModel, dir: string): Promise<void> {
  await model.save(fileSystemHandler(dir));
}

/**
 * The `ModelInfo` of a model saved to a directory (its {@link MODEL_INFO_FILE}), without loading the
 * model: its backbone, its step, its metadata. Throws when the directory holds no complete model.
 */
export async function readModelInfo(dir: string): Promise<ModelInfo> {
  const infoPath = join(dir, MODEL_INFO_FILE);
  const text = await readFile(infoPath, 'utf8').catch(() => {
    throw new Error(`${infoPath} is missing: ${dir} is not a saved DropClass model (or its save did not finish)`);
  });
  const info = JSON.parse(text) as ModelInfo;
  if (info.format !== MODEL_FORMAT) throw new Error(`${infoPath}: format ${JSON.stringify(info.format)} is not ${MODEL_FORMAT}`);
  info.metadata ??= {};
  return info;
}

/** Loads a model saved to a directory by {@link saveModel} (see `DropClassModel.load`). */
export async function loadModel(dir: string): Promise<DropClassModel> {
  // The info first: a directory without it holds no complete model, whatever else it has.
  await readModelInfo(dir);
  return DropClassModel.load(fileSystemHandler(dir), { source: join(dir, MODEL_JSON) });
}

/**
 * Writes a deployable tfjs Layers model of stock layers only to a directory: `model.json` and one
 * weight file, {@link EXPORT_WEIGHTS} (see `exportStockModel` of `@dropclass/core`, which saves
 * through any tfjs `IOHandler`).
 */
export async function exportStockModel(model: DropClassModel, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  return exportThroughHandler(model, fileSystemHandler(dir, { weightsPath: EXPORT_WEIGHTS }), options);
}
