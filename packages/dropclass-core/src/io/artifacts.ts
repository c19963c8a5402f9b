import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Weight entries and their bytes, in the same order. */
export interface WeightGroup {
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, uint16: 2, complex64: 8 };

function byteLength(spec: tf.io.WeightsManifestEntry): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes = BYTES_PER_ELEMENT[dtype];
  if (bytes === undefined) throw new Error(`weight ${spec.name}: dtype ${dtype} is not one a DropClass model stores`);
  return spec.shape.reduce((a, b) => a * b, 1) * bytes;
}

/** The artifacts' weights, split into the model's and the optimizer's (`group: 'optimizer'`, as tfjs-layers marks them). */
export function weightGroups(artifacts: tf.io.ModelArtifacts): { model: WeightGroup; optimizer: WeightGroup } {
  const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const groups = { model: { specs: [], parts: [] }, optimizer: { specs: [], parts: [] } } as Record<'model' | 'optimizer', { specs: tf.io.WeightsManifestEntry[]; parts: ArrayBuffer[] }>;
  let offset = 0;
  for (const spec of artifacts.weightSpecs ?? []) {
    const bytes = byteLength(spec);
    const group = groups[spec.group === 'optimizer' ? 'optimizer' : 'model'];
    group.specs.push(spec);
    group.parts.push(data.slice(offset, offset + bytes));
    offset += bytes;
  }
  if (offset !== data.byteLength) throw new Error(`the weights manifest describes ${offset} bytes, the weight data holds ${data.byteLength}`);
  const join = (g: { specs: tf.io.WeightsManifestEntry[]; parts: ArrayBuffer[] }): WeightGroup => ({ specs: g.specs, data: tf.io.CompositeArrayBuffer.join(g.parts) });
  return { model: join(groups.model), optimizer: join(groups.optimizer) };
}

/** The `model.json` of artifacts whose weights are one file at `weightsPath` (relative to it). */
export function modelJsonOf(artifacts: tf.io.ModelArtifacts, weightsPath: string): tf.io.ModelJSON {
  return {
    modelTopology: artifacts.modelTopology as object,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    trainingConfig: artifacts.trainingConfig,
    userDefinedMetadata: artifacts.userDefinedMetadata,
    weightsManifest: [{ paths: [weightsPath], weights: artifacts.weightSpecs ?? [] }],
  };
}

/** What a layers model gives an `IOHandler` when saved (topology, weight manifest, weights). */
export async function layersModelArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    }),
  );
  return artifacts!;
}

const NODE_HINT = 'to save to or load from a directory in Node, use saveModel, loadModel or exportStockModel from @dropclass/core/node';

/** The handler given, or the one tfjs routes a URL to (`indexeddb://`, `localstorage://`, `downloads://`, `http(s)://`, ...). */
export function resolveHandler(target: tf.io.IOHandler | string, purpose: 'save' | 'load'): tf.io.IOHandler {
  if (typeof target !== 'string') {
    if (typeof target?.[purpose] !== 'function') throw new TypeError(`the IOHandler given cannot ${purpose} (it has no ${purpose} method)`);
    return target;
  }
  const handlers = purpose === 'save' ? tf.io.getSaveHandlers(target) : tf.io.getLoadHandlers(target);
  if (handlers.length === 0) throw new Error(`tfjs has no IOHandler to ${purpose} ${JSON.stringify(target)}; give a tf.io.IOHandler or a URL tfjs routes (indexeddb://, localstorage://, downloads://, http(s)://); ${NODE_HINT}`);
  if (handlers.length > 1) throw new Error(`tfjs has ${handlers.length} IOHandlers to ${purpose} ${JSON.stringify(target)}; give one tf.io.IOHandler`);
  return handlers[0];
}
