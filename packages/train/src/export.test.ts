import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createDeepLabV3 } from '@dropclass/backbone-deeplab';
import { createUNet } from '@dropclass/backbone-unet';
import { defaultPalette } from '@dropclass/datasets';
import { DropClassModel, EXPORT_WEIGHTS, type SegmentationBackbone, toStockModel } from '@dropclass/core';
import { exportStockModel } from '@dropclass/core/node';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const checker = resolve(dirname(fileURLToPath(import.meta.url)), '../test/plain-tfjs-predict.mjs');
/** Logits of the export and of the training model agree to this, relative to the largest logit. */
const LOGIT_TOLERANCE = 1e-4;
/** float16 weights keep about 3 decimal digits; the logits move by a little more through the layers. */
const FLOAT16_LOGIT_TOLERANCE = 2e-2;

let work: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  work = await mkdtemp(join(tmpdir(), 'dropclass-export-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A model a few steps into training, so its batch-norm statistics and head are not at their initial values. */
function trainedModel(backbone: SegmentationBackbone, size: [number, number], dropclass: boolean): DropClassModel {
  const model = DropClassModel.create(backbone, { numClasses: 4, seed: 3, dropclass, metadata: { classNames: ['a', 'b', 'c', 'd'], mean: [120, 110, 100], std: [60, 60, 60] } });
  for (let step = 0; step < 3; step++) {
    const images = tf.randomNormal([2, ...size, 3], 0, 1, 'float32', 10 + step) as tf.Tensor4D;
    const labels = tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([2, ...size], 0, 4, 'float32', 20 + step)), 'int32')) as tf.Tensor3D;
    model.trainStep(images, labels, { progress: 0.5, learningRate: 0.002 });
    tf.dispose([images, labels]);
  }
  return model;
}

/** Predicts with the export in a separate node process that imports @tensorflow/tfjs only. */
async function plainTfjs(dir: string, images: tf.Tensor4D): Promise<{ logits: Float32Array; classes: Int32Array; backend: string; layers: string[] }> {
  const input = join(dir, '..', `${images.id}.images.bin`);
  await writeFile(input, new Uint8Array((images.dataSync() as Float32Array).buffer));
  const prefix = join(dir, '..', `${images.id}.out`);
  const [b, h, w] = images.shape;
  const { stdout } = await run(process.execPath, [checker, dir, input, `${b},${h},${w}`, prefix], { cwd: tmpdir() });
  const bytes = async (f: string) => {
    const buf = await readFile(f);
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  };
  return { ...JSON.parse(stdout), logits: new Float32Array(await bytes(`${prefix}.logits.bin`)), classes: new Int32Array(await bytes(`${prefix}.classes.bin`)) };
}

const cases: { name: string; size: [number, number]; dropclass: boolean; backbone: () => SegmentationBackbone }[] = [
  { name: 'U-Net', size: [16, 24], dropclass: true, backbone: () => createUNet({ base: 4, depth: 2, seed: 1 }) },
  { name: 'DeepLabV3', size: [64, 48], dropclass: true, backbone: () => createDeepLabV3({ width: 0.125, outputStride: 16, seed: 1 }) },
  { name: 'U-Net baseline', size: [16, 24], dropclass: false, backbone: () => createUNet({ base: 4, depth: 2, seed: 1 }) },
];

describe.each(cases)('dropclass export of a $name model', ({ name, size, dropclass, backbone }) => {
  let model: DropClassModel;
  let images: tf.Tensor4D;
  let expectedLogits: Float32Array;
  let expectedClasses: Int32Array;
  beforeAll(() => {
    model = trainedModel(backbone(), size, dropclass);
    images = tf.randomNormal([2, ...size, 3], 0, 1, 'float32', 99) as tf.Tensor4D;
    const logits = model.predictLogits(images);
    const classes = model.predict(images);
    expectedLogits = logits.dataSync() as Float32Array;
    expectedClasses = classes.dataSync() as Int32Array;
    tf.dispose([logits, classes]);
  });
  afterAll(() => {
    tf.dispose(images);
    model.dispose();
  });

  it('loads with plain @tensorflow/tfjs on cpu and predicts the class maps of DropClassModel.predict', async () => {
    const dir = join(work, `${name}-f32`);
    const tensorsBefore = tf.memory().numTensors;
    const result = await exportStockModel(model, dir);
    expect(tf.memory().numTensors, 'tensors left behind by the export').toBe(tensorsBefore);
    expect(result.metadata.classNames).toEqual(['a', 'b', 'c', 'd']);
    expect(result.metadata.input.mean).toEqual([120, 110, 100]);
    // A model whose metadata has no palette is exported with the colours dropclass predict draws it with.
    expect(result.metadata.palette).toEqual(defaultPalette(4));
    const plain = await plainTfjs(dir, images);
    expect(plain.backend).toBe('cpu');
    expect(plain.layers.filter((c) => /DropClass|Atrous|SpatialBroadcast/.test(c))).toEqual([]);
    // Every batch norm of these backbones follows a conv, so every one was folded into its conv.
    expect(plain.layers.filter((c) => c === 'BatchNormalization')).toEqual([]);
    expect(plain.layers.filter((c) => c === 'Conv2D').length).toBeGreaterThan(2);
    expect(plain.logits.length).toBe(expectedLogits.length);
    const scale = Math.max(...expectedLogits.map(Math.abs));
    const worst = plain.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - expectedLogits[i])), 0);
    console.log(`${name} export on plain tfjs (cpu): largest logit difference ${worst.toExponential(2)}, ${(worst / scale).toExponential(2)} of the largest logit`);
    expect(worst / scale).toBeLessThan(LOGIT_TOLERANCE);
    expect(Array.from(plain.classes)).toEqual(Array.from(expectedClasses));
    // Several classes are predicted, so the equality says something about the argmax.
    expect(new Set(expectedClasses).size).toBeGreaterThan(1);
  });

  it('stores float16 weights in half the bytes and stays close', async () => {
    const dir = join(work, `${name}-f16`);
    const half = await exportStockModel(model, dir, { quantize: 'float16' });
    const full = (await stat(join(work, `${name}-f32`, EXPORT_WEIGHTS))).size;
    expect(half.weightBytes).toBe((await stat(join(dir, EXPORT_WEIGHTS))).size);
    expect(half.weightBytes).toBe(full / 2);
    const plain = await plainTfjs(dir, images);
    const scale = Math.max(...expectedLogits.map(Math.abs));
    const worst = plain.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - expectedLogits[i])), 0);
    console.log(`${name} float16 export: largest logit difference ${worst.toExponential(2)}, ${(worst / scale).toExponential(2)} of the largest logit`);
    expect(worst).toBeGreaterThan(0);
    expect(worst / scale).toBeLessThan(FLOAT16_LOGIT_TOLERANCE);
  });
});

it('refuses a layer that has no stock equivalent, naming it', () => {
  const model = DropClassModel.create(createUNet({ base: 2, depth: 1 }), { numClasses: 3 });
  expect(() => toStockModel(model.network)).toThrow(/dropclass_head is a DropClassHead, which plain tfjs-layers cannot load: register/);
  model.dispose();
});
