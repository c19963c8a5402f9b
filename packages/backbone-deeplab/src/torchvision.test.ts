import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DropClassModel, type StateDict, WeightMismatchError, loadStateDict, namedWeights } from '@dropclass/core';
import { readSafetensors } from '@dropclass/core/node';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeepLabV3, createResNetEncoder, deeplabv3, torchvisionWeightMap } from './deeplab.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../python/torchvision_weights.py', import.meta.url));
const hasTorchvision = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
if (!hasTorchvision) console.log(`torchvision equality: ${PYTHON} has no torch/torchvision, so it is skipped (apt-get install python3-torch python3-torchvision to run it)`);

/** Largest |ours - torch| over the largest |torch|: the relative difference of the whole output. */
function relativeDifference(ours: tf.Tensor, torch: { shape: number[]; values: Float32Array }): number {
  expect(ours.shape).toEqual(torch.shape);
  const a = ours.dataSync();
  let gap = 0;
  let scale = 0;
  torch.values.forEach((v, i) => {
    gap = Math.max(gap, Math.abs(a[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return gap / scale;
}

describe.skipIf(!hasTorchvision)("torchvision's models with random weights, read from .safetensors", () => {
  const dir = mkdtempSync(join(tmpdir(), 'torchvision-'));
  const files = new Map<string, { weights: StateDict; io: StateDict }>();
  const read = async (name: string) => {
    if (!files.has(name)) files.set(name, { weights: (await readSafetensors(join(dir, `${name}.safetensors`))).tensors, io: (await readSafetensors(join(dir, `${name}-io.safetensors`))).tensors });
    return files.get(name)!;
  };

  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    const run = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${SCRIPT} failed:\n${run.stderr}`);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['resnet18', 'resnet34', 'resnet50'] as const)('%s: every tensor loads, and the encoder equals torchvision\'s forward (layer4) within 1e-4', async (layout) => {
    const { weights, io } = await read(layout);
    const encoder = createResNetEncoder({ layout });
    const report = loadStateDict(namedWeights(encoder.weights), weights, { source: `${layout}.safetensors`, map: torchvisionWeightMap([...weights.keys()]), parts: ['backbone'] });
    expect(report.initialised).toEqual([]);
    expect(report.ignored).toContain('fc.weight');
    expect(report.ignored.filter((k) => !k.endsWith('num_batches_tracked')).sort()).toEqual(['fc.bias', 'fc.weight']);
    expect(report.loaded).toHaveLength(encoder.weights.length);
    const input = tf.tensor(io.get('input')!.values, io.get('input')!.shape);
    const features = encoder.predict(input) as tf.Tensor;
    const difference = relativeDifference(features, io.get('features')!);
    console.log(`${layout}: largest relative difference from torchvision ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(1e-4);
    tf.dispose([input, features]);
    encoder.dispose();
  });

  it("deeplabv3_resnet50: backbone, ASPP, head conv and classifier load (aux_classifier ignored); logits and upsampled output equal torchvision's within 1e-4", async () => {
    const { weights, io } = await read('deeplabv3_resnet50');
    const map = deeplabv3.torchWeights!([...weights.keys()], deeplabv3.parseOptions({}));
    const model = DropClassModel.create(createDeepLabV3({ layout: 'resnet50', outputStride: 8, headConv: true }), { numClasses: 21, dropclass: false });
    const report = model.loadStateDict(weights, { source: 'deeplabv3_resnet50.safetensors', map });
    expect(report.initialised).toEqual([]);
    expect(report.loaded).toHaveLength(model.namedWeights().length);
    expect(report.ignored.some((k) => k.startsWith('aux_classifier.'))).toBe(true);
    expect(report.ignored.every((k) => k.startsWith('aux_classifier.') || k.endsWith('.num_batches_tracked'))).toBe(true);
    const input = tf.tensor4d(io.get('input')!.values, io.get('input')!.shape as [number, number, number, number]);
    const logits = model.network.predict(input) as tf.Tensor;
    const out = model.predictLogits(input);
    const [a, b] = [relativeDifference(logits, io.get('logits')!), relativeDifference(out, io.get('out')!)];
    console.log(`deeplabv3_resnet50: largest relative difference from torchvision ${a.toExponential(2)} (logits at stride 8), ${b.toExponential(2)} (upsampled output)`);
    expect(a).toBeLessThan(1e-4);
    expect(b).toBeLessThan(1e-4);
    tf.dispose([input, logits, out]);
    model.dispose();
  });

  it('fine-tunes torchvision\'s DeepLabV3 for 8 classes: the classifier is refused by default, new with parts ["backbone"]; a DropClass head gets a new selection layer', async () => {
    const { weights } = await read('deeplabv3_resnet50');
    const map = torchvisionWeightMap([...weights.keys()]);
    const model = DropClassModel.create(createDeepLabV3({ layout: 'resnet50', outputStride: 8, headConv: true }), { numClasses: 8 });
    let error: WeightMismatchError | undefined;
    try {
      model.loadStateDict(weights, { source: 'deeplabv3_resnet50.safetensors', map });
    } catch (e) {
      error = e as WeightMismatchError;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    expect(error!.mismatched.map((m) => `${m.from} -> ${m.key}`)).toEqual(['classifier.4.weight -> dropclass_head.classifier.weight', 'classifier.4.bias -> dropclass_head.classifier.bias']);
    expect(error!.missing).toEqual([]);
    const report = model.loadStateDict(weights, { source: 'deeplabv3_resnet50.safetensors', map, parts: ['backbone'] });
    expect(report.skipped.map((s) => s.from)).toEqual(['classifier.4.weight', 'classifier.4.bias']);
    expect(new Set(report.initialised.map((i) => i.part))).toEqual(new Set(['classifier', 'selection']));
    const conv = model.network.getLayer('layer4.2.conv3').getWeights()[0];
    const source = weights.get('backbone.layer4.2.conv3.weight')!;
    // [out, in, 1, 1] in PyTorch is [1, 1, in, out] here: element (out 5, in 7).
    expect((conv.arraySync() as number[][][][])[0][0][7][5]).toBe(source.values[5 * source.shape[1] + 7]);
    model.dispose();
  });

  it('names what does not fit: ResNet-50 weights into a ResNet-34 encoder, a DeepLabV3 file into a backbone without the head conv', async () => {
    const { weights } = await read('resnet50');
    const encoder = createResNetEncoder({ layout: 'resnet34' });
    let error: WeightMismatchError | undefined;
    try {
      loadStateDict(namedWeights(encoder.weights), weights, { source: 'resnet50.safetensors', map: torchvisionWeightMap([...weights.keys()]), parts: ['backbone'] });
    } catch (e) {
      error = e as WeightMismatchError;
    }
    expect(error!.message).toContain('resnet50.safetensors (torchvision/timm ResNet (encoder only)) does not fit the model:');
    expect(error!.unexpected).toContain('layer1.0.conv3.weight');
    expect(error!.mismatched.find((m) => m.key === 'layer1.0.conv1.weight')).toMatchObject({ expected: [64, 64, 3, 3], found: [64, 64, 1, 1] });
    encoder.dispose();
    const deeplab = await read('deeplabv3_resnet50');
    const plain = DropClassModel.create(createDeepLabV3({ layout: 'resnet50', outputStride: 8 }), { numClasses: 21 });
    expect(() => plain.loadStateDict(deeplab.weights, { source: 'd.safetensors', map: torchvisionWeightMap([...deeplab.weights.keys()]) })).toThrow(/unexpected .*: classifier\.1\.weight \(as head\.0\.weight\)/);
    plain.dispose();
  });

  it('refuses a file that is neither a ResNet nor a DeepLabV3', () => {
    expect(() => torchvisionWeightMap(['encoder.block.0.weight', 'decoder.weight'])).toThrow(
      "the file is neither a torchvision/timm ResNet (keys conv1.weight, layer1.0.conv1.weight, ...) nor torchvision's DeepLabV3 (keys backbone.*, classifier.*); its keys begin encoder.block.0.weight, decoder.weight",
    );
  });
});
