import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DropClassModel } from '../model/model.js';
import { useCpuBackend } from '@dropclass/testing/cpu';
import { EXPORT_WEIGHTS, exportStockModel as exportThroughHandler } from '../export/export.js';
import { MODEL_INFO_FILE, exportStockModel, loadModel, readModelInfo, saveModel } from './index.js';

function tinyModel(): DropClassModel {
  const input = tfl.input({ shape: [null, null, 3] });
  const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 1 });
  const backbone = { name: 'tiny', model: tfl.model({ inputs: input, outputs: conv.apply(input) as tfl.SymbolicTensor }), outputStride: 1, inputChannels: 3, inputSizeMultiple: 1, minInputSize: 1 };
  return DropClassModel.create(backbone, { numClasses: 2, seed: 1, metadata: { classNames: ['sky', 'sea'] } });
}

describe('@dropclass/core/node', () => {
  let dir: string;
  beforeAll(async () => {
    await useCpuBackend();
    dir = await mkdtemp(join(tmpdir(), 'dropclass-node-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('saves a model as model.json and weights.bin (plain tfjs), the optimizer state beside them and the info in dropclass.json', async () => {
    const model = tinyModel();
    const images = tf.ones([1, 2, 2, 3]) as tf.Tensor4D;
    const labels = tf.zeros([1, 2, 2], 'int32') as tf.Tensor3D;
    model.trainStep(images, labels, { progress: 0, learningRate: 0.1 });
    const out = join(dir, 'saved');
    await saveModel(model, out);
    expect((await readdir(out)).sort()).toEqual([MODEL_INFO_FILE, 'model.json', 'optimizer.bin', 'optimizer.json', 'weights.bin']);
    const modelJson = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
    expect(modelJson.userDefinedMetadata).toBeUndefined();
    expect(modelJson.weightsManifest[0].paths).toEqual(['./weights.bin']);
    expect(modelJson.weightsManifest[0].weights.some((w: tf.io.WeightsManifestEntry) => w.group !== undefined)).toBe(false);
    expect(await readModelInfo(out)).toEqual(model.info);
    const loaded = await loadModel(out);
    expect(loaded.info).toEqual(model.info);
    expect(Object.keys(loaded.momentumBuffers()).sort()).toEqual(Object.keys(model.momentumBuffers()).sort());
    await expect(readModelInfo(dir)).rejects.toThrow(`${join(dir, MODEL_INFO_FILE)} is missing: ${dir} is not a saved DropClass model`);
    tf.dispose([images, labels]);
    model.dispose();
    loaded.dispose();
  });

  it('writes an export to a directory as the main entry saves it through an IOHandler', async () => {
    const model = tinyModel();
    const out = join(dir, 'export');
    const written = await exportStockModel(model, out, { quantize: 'float16' });
    let artifacts: tf.io.ModelArtifacts | undefined;
    const through = await exportThroughHandler(model, tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) })), { quantize: 'float16' });
    expect(through).toEqual(written);
    expect((await readdir(out)).sort()).toEqual([EXPORT_WEIGHTS, 'model.json']);
    expect(written.topologyBytes).toBe((await stat(join(out, 'model.json'))).size);
    expect(written.weightBytes).toBe((await stat(join(out, EXPORT_WEIGHTS))).size);
    expect(new Uint8Array(await readFile(join(out, EXPORT_WEIGHTS)))).toEqual(new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts!.weightData!)));
    expect(artifacts!.userDefinedMetadata).toEqual({ dropclass: written.metadata });
    model.dispose();
  });
});
