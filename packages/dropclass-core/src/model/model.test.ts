import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationBackbone } from '../adapter.js';
import { DropClassModel } from './model.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

function backboneOf(model: tfl.LayersModel): SegmentationBackbone {
  return { name: 'probe', model, outputStride: 1, inputChannels: 3, inputSizeMultiple: 1, minInputSize: 1 };
}

function convBackbone(outputChannels: number): SegmentationBackbone {
  const input = tfl.input({ shape: [null, null, 3] });
  const conv = tfl.layers.conv2d({ filters: outputChannels, kernelSize: 1 });
  return backboneOf(tfl.model({ inputs: input, outputs: conv.apply(input) as tfl.SymbolicTensor }));
}

describe('DropClassModel.create', () => {
  beforeAll(() => useCpuBackend());

  it('reads the feature channels from the backbone model\'s output shape: head, saved info and logits follow them', () => {
    const model = DropClassModel.create(convBackbone(5), { numClasses: 3 });
    expect(model.info.backbone.channels).toBe(5);
    expect(model.head.kernel.shape).toEqual([5, 3]);
    expect(model.head.selection.kernel.shape).toEqual([5, 5]);
    const images = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
    const logits = model.predictLogits(images);
    expect(logits.shape).toEqual([1, 4, 4, 3]);
    tf.dispose([images, logits]);
    model.dispose();
  });

  it('refuses a backbone model whose channel count is unknown, saying what it outputs and what is needed', () => {
    const input = tfl.input({ shape: [null, null, null] });
    const backbone = backboneOf(tfl.model({ inputs: input, outputs: tfl.layers.reLU().apply(input) as tfl.SymbolicTensor }));
    expect(() => DropClassModel.create(backbone, { numClasses: 3 })).toThrow(
      "the probe backbone's model outputs [null, null, null, null]; it must output a feature map [B, H, W, C] whose channel count C is known",
    );
    backbone.model.dispose();
  });

  it('refuses a backbone model with two outputs, or one that is not a 4-d feature map', () => {
    const input = tfl.input({ shape: [null, null, 3] });
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input) as tfl.SymbolicTensor;
    const two = backboneOf(tfl.model({ inputs: input, outputs: [a, b] }));
    expect(() => DropClassModel.create(two, { numClasses: 3 })).toThrow(
      "the probe backbone's model has 2 outputs ([null, null, null, 4], [null, null, null, 2]); it must output one feature map [B, H, W, C]",
    );
    const flat = tfl.input({ shape: [6] });
    const dense = backboneOf(tfl.model({ inputs: flat, outputs: tfl.layers.dense({ units: 4 }).apply(flat) as tfl.SymbolicTensor }));
    expect(() => DropClassModel.create(dense, { numClasses: 3 })).toThrow("the probe backbone's model outputs [null, 4]; it must output a feature map [B, H, W, C]");
    two.model.dispose();
    dense.model.dispose();
  });
});

describe('DropClassModel.save and load', () => {
  beforeAll(() => useCpuBackend());

  it('go through any tfjs IOHandler: network, optimizer state and info come back, and training resumes as it would have', async () => {
    const model = DropClassModel.create(convBackbone(4), { numClasses: 3, seed: 2, metadata: { classNames: ['a', 'b', 'c'] } });
    const images = tf.randomUniform([2, 4, 4, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor3d(Array.from({ length: 32 }, (_, i) => i % 3), [2, 4, 4], 'int32');
    model.trainStep(images, labels, { progress: 0.5, learningRate: 0.1 });
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (artifacts) => ((saved = artifacts), { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) })));
    expect((saved!.userDefinedMetadata as { dropclass: { step: number } }).dropclass.step).toBe(1);
    expect(saved!.weightSpecs!.filter((spec) => spec.group === 'optimizer').length).toBe(model.trainableVariables.length);

    const loaded = await DropClassModel.load({ load: async () => saved! });
    expect(loaded.info).toEqual(model.info);
    const [a, b] = [model.predictLogits(images), loaded.predictLogits(images)];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(loaded.trainStep(images, labels, { progress: 0.5, learningRate: 0.1 })).toEqual(model.trainStep(images, labels, { progress: 0.5, learningRate: 0.1 }));
    tf.dispose([a, b, images, labels]);
    model.dispose();
    loaded.dispose();
  });

  it('refuse a path that no tfjs IOHandler takes, pointing to the node entry', async () => {
    const model = DropClassModel.create(convBackbone(2), { numClasses: 2 });
    await expect(model.save('runs/tiny')).rejects.toThrow(/tfjs has no IOHandler to save "runs\/tiny".*saveModel, loadModel or exportStockModel from @dropclass\/core\/node/);
    await expect(DropClassModel.load('runs/tiny')).rejects.toThrow(/tfjs has no IOHandler to load "runs\/tiny"/);
    model.dispose();
  });
});
