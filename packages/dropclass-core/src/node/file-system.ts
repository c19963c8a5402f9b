import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { modelJsonOf, weightGroups } from '../io/artifacts.js';
import { METADATA_KEY } from '../model/metadata.js';

/** The topology and weights manifest of a model in a directory. */
export const MODEL_JSON = 'model.json';
/** The weights of a model saved to a directory (an export's are `EXPORT_WEIGHTS` of `@dropclass/core`). */
export const WEIGHTS_BIN = 'weights.bin';
/**
 * The `ModelInfo` of a DropClass model saved to a directory, written last: a directory that has it
 * holds a complete model.
 */
export const MODEL_INFO_FILE = 'dropclass.json';
const OPTIMIZER_JSON = 'optimizer.json';
const OPTIMIZER_BIN = 'optimizer.bin';

/** Writes a file through a temporary name and a rename, so a reader never sees half of it. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}

/** Options of {@link fileSystemHandler}. */
export interface FileSystemHandlerOptions {
  /** The weight file a save writes, as `model.json` names it. Default `./weights.bin`. */
  weightsPath?: string;
}

/** Whether the artifacts' user metadata holds a DropClass model's info (rather than an export's metadata). */
function isModelInfo(value: unknown): value is { format: string } {
  const format = (value as { format?: unknown } | undefined)?.format;
  return typeof format === 'string' && format.startsWith('dropclass-model/');
}

const toBuffer = (bytes: Uint8Array): ArrayBuffer => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/**
 * A tfjs `IOHandler` for a directory on disk that works without tfjs-node, on any backend: a model's
 * `model.json` and one weight file (`weights.bin`). A DropClass model (`DropClassModel.save`) also
 * gets its optimizer state (`optimizer.json`, `optimizer.bin`) and its `ModelInfo` in
 * {@link MODEL_INFO_FILE}, written last, which `load` gives back as the same artifacts.
 */
export function fileSystemHandler(dir: string, options: FileSystemHandlerOptions = {}): tf.io.IOHandler {
  const weightsPath = options.weightsPath ?? `./${WEIGHTS_BIN}`;
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await mkdir(dir, { recursive: true });
      const { model, optimizer } = weightGroups(artifacts);
      const { [METADATA_KEY]: info, ...otherMetadata } = artifacts.userDefinedMetadata ?? {};
      const saved = isModelInfo(info);
      const userDefinedMetadata = saved ? (Object.keys(otherMetadata).length ? otherMetadata : undefined) : artifacts.userDefinedMetadata;
      await writeFileAtomic(join(dir, weightsPath), new Uint8Array(model.data));
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(modelJsonOf({ ...artifacts, userDefinedMetadata, weightSpecs: model.specs }, weightsPath)));
      if (saved || optimizer.specs.length) {
        await writeFileAtomic(join(dir, OPTIMIZER_BIN), new Uint8Array(optimizer.data));
        await writeFileAtomic(join(dir, OPTIMIZER_JSON), JSON.stringify({ weights: optimizer.specs.map(({ group: _, ...spec }) => spec) }));
      }
      if (saved) await writeFileAtomic(join(dir, MODEL_INFO_FILE), JSON.stringify(info, null, 2));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const path = join(dir, MODEL_JSON);
      const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new Error(`${path}: cannot read the saved model (${error.code ?? error.message}); give the directory a model was saved to`);
      });
      const modelJson = JSON.parse(text) as tf.io.ModelJSON;
      const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const buffers = await Promise.all(manifest.flatMap((group) => group.paths).map(async (p) => toBuffer(await readFile(join(dir, p)))));
        return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
      });
      const info = await readFile(join(dir, MODEL_INFO_FILE), 'utf8').catch(() => undefined);
      if (info === undefined) return artifacts;
      artifacts.userDefinedMetadata = { ...artifacts.userDefinedMetadata, [METADATA_KEY]: JSON.parse(info) as object };
      const optimizerJson = await readFile(join(dir, OPTIMIZER_JSON), 'utf8').catch(() => undefined);
      if (optimizerJson) {
        const { weights } = JSON.parse(optimizerJson) as { weights: tf.io.WeightsManifestEntry[] };
        const data = toBuffer(await readFile(join(dir, OPTIMIZER_BIN)));
        artifacts.weightSpecs = [...(artifacts.weightSpecs ?? []), ...weights.map((spec) => ({ ...spec, group: 'optimizer' as const }))];
        artifacts.weightData = tf.io.CompositeArrayBuffer.join([tf.io.CompositeArrayBuffer.join(artifacts.weightData), data]);
      }
      return artifacts;
    },
  };
}
