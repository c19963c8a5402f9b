import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationBackbone } from '../adapter.js';
import { convBnRelu } from '../layers/conv-bn-relu.js';
import { DropClassModel } from '../model/model.js';
import { randomValues, useCpuBackend } from '@dropclass/testing/cpu';
import type { StateDict } from './safetensors.js';
import { type WeightMap, WeightMismatchError, torchShape } from './state-dict.js';

/** conv1 (3x3, 3->4) + bn1 + a 1x1 conv "proj" (4->6) with bias, named as a PyTorch module would be. */
function namedBackbone(): SegmentationBackbone {
  const input = tfl.input({ shape: [null, null, 3] });
  const x = convBnRelu(input, { filters: 4, kernelSize: 3, seed: 1, names: { conv: 'conv1', norm: 'bn1' } });
  const y = tfl.layers.conv2d({ filters: 6, kernelSize: 1, name: 'proj' }).apply(x) as tfl.SymbolicTensor;
  return { name: 'probe', model: tfl.model({ inputs: input, outputs: y }), outputStride: 1, inputChannels: 3, inputSizeMultiple: 1, minInputSize: 1 };
}

/** A PyTorch-layout state dict for `namedBackbone` + a 5-class head, with a prefix and an ImageNet fc. */
function torchDict(classes = 5): StateDict {
  const t = (shape: number[], seed: number) => ({ dtype: 'F32', shape, values: randomValues(shape.reduce((a, b) => a * b, 1), seed) });
  return new Map([
    ['net.conv1.weight', t([4, 3, 3, 3], 1)],
    ['net.bn1.weight', t([4], 2)],
    ['net.bn1.bias', t([4], 3)],
    ['net.bn1.running_mean', t([4], 4)],
    ['net.bn1.running_var', { dtype: 'F32', shape: [4], values: new Float32Array([1, 2, 3, 4]) }],
    ['net.bn1.num_batches_tracked', { dtype: 'I64', shape: [], values: new Float32Array([10]) }],
    ['net.proj.weight', t([6, 4, 1, 1], 5)],
    ['net.proj.bias', t([6], 6)],
    ['head.weight', t([classes, 6, 1, 1], 7)],
    ['head.bias', t([classes], 8)],
    ['fc.weight', t([1000, 6], 9)],
  ]);
}

/** Keys `net.X` -> `X`, `head.*` -> the DropClass classifier; `fc.*` and `num_batches_tracked` ignored. */
const map: WeightMap = {
  description: 'a test network',
  translate(key) {
    if (key.startsWith('fc.') || key.endsWith('.num_batches_tracked')) return null;
    if (key.startsWith('net.')) return key.slice(4);
    if (key.startsWith('head.')) return `dropclass_head.classifier.${key.slice(5)}`;
    return undefined;
  },
  covers: () => true,
};

describe('DropClassModel.loadStateDict', () => {
  beforeAll(() => useCpuBackend());

  it('names every weight as PyTorch would, with its part', () => {
    const model = DropClassModel.create(namedBackbone(), { numClasses: 5 });
    const named = model.namedWeights().map((w) => [w.key, w.part, torchShape(w).join('x')]);
    expect(named).toEqual([
      ['conv1.weight', 'backbone', '4x3x3x3'],
      ['bn1.weight', 'backbone', '4'],
      ['bn1.bias', 'backbone', '4'],
      ['bn1.running_mean', 'backbone', '4'],
      ['bn1.running_var', 'backbone', '4'],
      ['proj.weight', 'backbone', '6x4x1x1'],
      ['proj.bias', 'backbone', '6'],
      ['dropclass_head.classifier.weight', 'classifier', '5x6x1x1'],
      ['dropclass_head.classifier.bias', 'classifier', '5'],
      ['dropclass_head.selection.weight', 'selection', '6x6x1x1'],
      ['dropclass_head.selection.bias', 'selection', '6'],
      ['dropclass_head.bn.weight', 'selection', '6'],
      ['dropclass_head.bn.bias', 'selection', '6'],
      ['dropclass_head.bn.running_mean', 'selection', '6'],
      ['dropclass_head.bn.running_var', 'selection', '6'],
    ]);
    model.dispose();
  });

  it('loads every tensor in tfjs layout (OIHW -> HWIO, [K,C,1,1] -> [C,K]) and reports loaded, ignored and newly initialised weights', () => {
    const model = DropClassModel.create(namedBackbone(), { numClasses: 5 });
    const dict = torchDict();
    const selectionBefore = model.head.selection.kernel.dataSync().slice();
    const report = model.loadStateDict(dict, { source: 'w.safetensors', map });
    expect(report.loaded.map((l) => `${l.from} -> ${l.key}`)).toContain('net.conv1.weight -> conv1.weight');
    expect(report.loaded).toHaveLength(9);
    expect(report.ignored.sort()).toEqual(['fc.weight', 'net.bn1.num_batches_tracked']);
    expect(report.initialised.map((i) => `${i.key}: ${i.reason}`)).toContain('dropclass_head.selection.weight: part selection not loaded');
    expect(report.initialised).toHaveLength(6);
    const conv = model.network.getLayer('conv1').getWeights()[0];
    const torchConv = dict.get('net.conv1.weight')!.values;
    // tfjs [kh, kw, in, out] at (1, 2, 0, 3) is PyTorch [out, in, kh, kw] at (3, 0, 1, 2).
    expect(conv.arraySync() as number[][][][]).toBeDefined();
    expect((conv.arraySync() as number[][][][])[1][2][0][3]).toBeCloseTo(torchConv[3 * 27 + 0 * 9 + 1 * 3 + 2], 6);
    expect(Array.from(model.network.getLayer('bn1').getWeights()[3].dataSync())).toEqual([1, 2, 3, 4]);
    const kernel = model.head.kernel.arraySync() as number[][];
    expect(kernel[4][2]).toBeCloseTo(dict.get('head.weight')!.values[2 * 6 + 4], 6);
    expect(Array.from(model.head.bias.dataSync())).toEqual(Array.from(dict.get('head.bias')!.values));
    expect(Array.from(model.head.selection.kernel.dataSync())).toEqual(Array.from(selectionBefore));
    model.dispose();
  });

  it('leaves a part out when asked: its tensors in the file are reported as skipped, the model keeps its own', () => {
    const model = DropClassModel.create(namedBackbone(), { numClasses: 8 });
    const before = model.head.kernel.dataSync().slice();
    const report = model.loadStateDict(torchDict(21), { source: 'w.safetensors', map, parts: ['backbone'] });
    expect(report.skipped.map((s) => s.from).sort()).toEqual(['head.bias', 'head.weight']);
    expect(Array.from(model.head.kernel.dataSync())).toEqual(Array.from(before));
    model.dispose();
  });

  it('refuses, listing every missing, unexpected and mismatched key, and writes nothing', () => {
    const model = DropClassModel.create(namedBackbone(), { numClasses: 8 });
    const dict = torchDict(21);
    dict.delete('net.bn1.running_mean');
    dict.set('net.extra.weight', { dtype: 'F32', shape: [1], values: new Float32Array(1) });
    dict.set('aux.weight', { dtype: 'F32', shape: [1], values: new Float32Array(1) });
    const before = model.network.getLayer('conv1').getWeights()[0].dataSync().slice();
    let error: WeightMismatchError | undefined;
    try {
      model.loadStateDict(dict, { source: 'deeplab.safetensors', map });
    } catch (e) {
      error = e as WeightMismatchError;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    expect(error!.missing).toEqual(['bn1.running_mean']);
    expect(error!.unexpected.sort()).toEqual(['aux.weight', 'net.extra.weight (as extra.weight)']);
    expect(error!.mismatched.map((m) => `${m.key}: ${m.expected.join('x')} vs ${m.found.join('x')}`)).toEqual([
      'dropclass_head.classifier.weight: 8x6x1x1 vs 21x6x1x1',
      'dropclass_head.classifier.bias: 8 vs 21',
    ]);
    expect(error!.message).toContain('deeplab.safetensors (a test network) does not fit the model:');
    expect(error!.message).toContain('leave it out of the parts to load');
    expect(Array.from(model.network.getLayer('conv1').getWeights()[0].dataSync())).toEqual(Array.from(before));
    model.dispose();
  });

  it('requires only what the map covers: weights outside it are initialised, and say why', () => {
    const model = DropClassModel.create(namedBackbone(), { numClasses: 5 });
    const dict = torchDict();
    dict.delete('net.proj.weight');
    dict.delete('net.proj.bias');
    const encoderOnly: WeightMap = { ...map, description: 'an encoder file', covers: (key) => !key.startsWith('proj.') };
    const report = model.loadStateDict(dict, { source: 'enc.safetensors', map: encoderOnly });
    expect(report.initialised.filter((i) => i.part === 'backbone').map((i) => `${i.key}: ${i.reason}`)).toEqual([
      'proj.weight: an encoder file does not hold it',
      'proj.bias: an encoder file does not hold it',
    ]);
    model.dispose();
  });
});

describe('DropClassModel.loadWeightsFrom', () => {
  beforeAll(() => useCpuBackend());

  it('starts a DropClass model from a baseline: backbone and classifier equal the source, the selection layer is new', () => {
    const baseline = DropClassModel.create(namedBackbone(), { numClasses: 5, dropclass: false, seed: 3 });
    const model = DropClassModel.create(namedBackbone(), { numClasses: 5, seed: 4 });
    const report = model.loadWeightsFrom(baseline, { source: 'runs/pretrain' });
    const values = (m: DropClassModel, part: string) => m.namedWeights().filter((w) => w.part === part).map((w) => Array.from(w.variable.read().dataSync()));
    expect(values(model, 'backbone')).toEqual(values(baseline, 'backbone'));
    expect(values(model, 'classifier')).toEqual(values(baseline, 'classifier'));
    expect(report.loaded).toHaveLength(9);
    expect(report.initialised.map((i) => i.part)).toEqual(Array(6).fill('selection'));
    expect(() => model.loadWeightsFrom(baseline, { source: 'runs/pretrain', parts: ['selection'] })).toThrow(
      'runs/pretrain is a baseline model, with no feature-selection layer to load; leave "selection" out of the parts',
    );
    expect(() => baseline.loadWeightsFrom(model, { source: 'runs/dc', parts: ['backbone', 'selection'] })).toThrow(
      'runs/dc: this model is a baseline (dropclass: false) and has no feature-selection layer; leave "selection" out of the parts',
    );
    baseline.dispose();
    model.dispose();
  });

  it('refuses another network or class count, naming the mismatches', () => {
    const small = DropClassModel.create(namedBackbone(), { numClasses: 5 });
    const other = DropClassModel.create(namedBackbone(), { numClasses: 3 });
    expect(() => other.loadWeightsFrom(small, { source: 'runs/five' })).toThrow(/mismatched shapes \(2\): dropclass_head\.classifier\.weight: model \[3, 6, 1, 1\], source \[5, 6, 1, 1\]/);
    expect(other.loadWeightsFrom(small, { source: 'runs/five', parts: ['backbone'] }).loaded).toHaveLength(7);
    small.dispose();
    other.dispose();
  });
});

describe('training options of a fine-tune', () => {
  beforeAll(() => useCpuBackend());

  it('learning-rate multipliers scale each part\'s update (0 leaves a part unchanged)', () => {
    const images = tf.tensor4d(randomValues([2, 4, 4, 3], 1), [2, 4, 4, 3]);
    const labels = tf.tensor3d(Array.from({ length: 32 }, (_, i) => i % 5), [2, 4, 4], 'int32');
    const model = DropClassModel.create(namedBackbone(), { numClasses: 5, dropclass: false });
    const before = model.namedWeights().map((w) => w.variable.read().dataSync().slice());
    model.trainStep(images, labels, { progress: 0, learningRate: 0.1, learningRateMultipliers: { backbone: 0 } });
    const after = model.namedWeights().map((w) => w.variable.read().dataSync().slice());
    const changed = model.namedWeights().map((w, i) => `${w.key}:${before[i].some((v, j) => v !== after[i][j])}`);
    // The batch norm's moving statistics move with the batch; its scale and offset do not with lr 0.
    expect(changed).toEqual([
      'conv1.weight:false',
      'bn1.weight:false',
      'bn1.bias:false',
      'bn1.running_mean:true',
      'bn1.running_var:true',
      'proj.weight:false',
      'proj.bias:false',
      'dropclass_head.classifier.weight:true',
      'dropclass_head.classifier.bias:true',
    ]);
    tf.dispose([images, labels]);
    model.dispose();
  });

  it('frozen backbone batch norms keep their moving statistics and normalise with them, while scale and offset train', () => {
    const images = tf.tensor4d(randomValues([2, 4, 4, 3], 2), [2, 4, 4, 3]);
    const labels = tf.tensor3d(Array.from({ length: 32 }, (_, i) => i % 5), [2, 4, 4], 'int32');
    const model = DropClassModel.create(namedBackbone(), { numClasses: 5, dropclass: false });
    model.setBackboneNormFrozen(true);
    const bn = model.network.getLayer('bn1');
    const [gamma, , mean, variance] = bn.getWeights().map((w) => w.dataSync().slice());
    const inference = model.features.predict(images) as tf.Tensor;
    const training = model.features.apply(images, { training: true }) as tf.Tensor;
    expect(Array.from(training.dataSync())).toEqual(Array.from(inference.dataSync()));
    model.trainStep(images, labels, { progress: 0, learningRate: 0.1 });
    const [gamma2, , mean2, variance2] = bn.getWeights().map((w) => w.dataSync().slice());
    expect(Array.from(mean2)).toEqual(Array.from(mean));
    expect(Array.from(variance2)).toEqual(Array.from(variance));
    expect(Array.from(gamma2)).not.toEqual(Array.from(gamma));
    model.setBackboneNormFrozen(false);
    model.trainStep(images, labels, { progress: 0, learningRate: 0.1 });
    expect(Array.from(bn.getWeights()[2].dataSync())).not.toEqual(Array.from(mean));
    tf.dispose([images, labels, inference, training]);
    model.dispose();
  });

  it('refuses to freeze a backbone whose batch norms are tfjs\'s own layer', () => {
    const input = tfl.input({ shape: [null, null, 3] });
    const x = tfl.layers.batchNormalization({ name: 'stock_bn' }).apply(tfl.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(input) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
    const model = DropClassModel.create({ name: 'stock', model: tfl.model({ inputs: input, outputs: x }), outputStride: 1, inputChannels: 3, inputSizeMultiple: 1, minInputSize: 1 }, { numClasses: 2 });
    expect(() => model.setBackboneNormFrozen(true)).toThrow("the stock backbone has batch norms that cannot be frozen (stock_bn: BatchNormalization); build them with @dropclass/core's batchNormalization()");
    model.dispose();
  });
});
