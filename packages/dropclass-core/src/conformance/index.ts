import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackboneAdapter, BackboneOptionsError, type SegmentationBackbone } from '../adapter.js';
import { startBackend } from '../backend.js';
import { NO_CLASS_DROPPED } from '../dropclass/importance.js';
import { IGNORE_INDEX } from '../dropclass/objective.js';
import { resizeBilinear } from '../dropclass/upsample.js';
import { nearestValidSize } from '../model/input.js';
import { DropClassModel, type DropClassModelOptions } from '../model/model.js';
import { loadModel, saveModel } from '../node/index.js';
import { createBackbone, getBackbone } from '../registry.js';

/** Options of {@link runConformanceSuite}. */
export interface ConformanceOptions {
  /** Shown in the suite's title. */
  name: string;
  /** A fresh backbone whose initial weights depend only on `seed`. */
  createBackbone: (seed: number) => SegmentationBackbone;
  /** A small input size `[height, width]` the backbone takes. */
  inputSize: [number, number];
  numClasses?: number;
  batchSize?: number;
  /**
   * The backend to run on (default `wasm`), started by `@dropclass/tfjs-wasm-train` when it is
   * installed (the adapter's devDependency, as a rule: wasm needs its gradient kernels to train),
   * else set by name among the tfjs backend packages the test file imported.
   */
  backend?: 'tensorflow' | 'wasm' | 'cpu';
  /**
   * The package's adapter, when it has one: the suite then also checks that importing the package
   * registered it, that `parseOptions` fills in `defaults` and refuses unknown options, and that a
   * model built through the registry records (and keeps across save/load) its kind and package, so
   * that the command line can train it and load it again.
   */
  adapter?: BackboneAdapter<object>;
  /** Raw options for the adapter checks (keep the model small); default `{}`, the adapter's defaults. */
  adapterOptions?: Record<string, unknown>;
}

/** A fixed random batch: images and labels with some ignored pixels. */
function makeBatch(seed: number, batch: number, [height, width]: [number, number], channels: number, numClasses: number) {
  return tf.tidy(() => {
    const images = tf.randomNormal([batch, height, width, channels], 0, 1, 'float32', seed) as tf.Tensor4D;
    const raw = tf.randomUniform([batch, height, width], 0, numClasses + 1, 'int32', seed + 1);
    // The extra value stands for "no label": it becomes the ignore index.
    const labels = tf.where(tf.equal(raw, numClasses), tf.fill([batch, height, width], IGNORE_INDEX, 'int32'), raw) as tf.Tensor3D;
    return { images, labels };
  });
}

/** Channels of a backbone's feature map, from its model's output shape. */
function featureChannels(backbone: SegmentationBackbone): number {
  const shape = backbone.model.outputs[0].shape;
  return shape[shape.length - 1] as number;
}

/**
 * The behaviour every backbone adapter must show to get DropClass, run with vitest from the
 * adapter's own test file: `runConformanceSuite({ name, createBackbone, inputSize })`.
 */
export function runConformanceSuite(options: ConformanceOptions): void {
  const numClasses = options.numClasses ?? 4;
  const batchSize = options.batchSize ?? 2;
  const [height, width] = options.inputSize;
  const learningRate = 0.01;
  let images: tf.Tensor4D;
  let labels: tf.Tensor3D;
  let probe: SegmentationBackbone;

  const build = (seed: number, extra: Partial<DropClassModelOptions> = {}) =>
    DropClassModel.create(options.createBackbone(seed), { numClasses, seed, ...extra });

  describe(`DropClass conformance: ${options.name}`, () => {
    beforeAll(async () => {
      await startBackend({ backend: options.backend ?? 'wasm', quiet: true });
      probe = options.createBackbone(1);
      ({ images, labels } = makeBatch(7, batchSize, options.inputSize, probe.inputChannels, numClasses));
    });

    afterAll(() => {
      tf.dispose([images, labels]);
      probe.model.dispose();
    });

    it('outputs one feature map with the channels of its output shape, at the declared output stride', () => {
      expect(probe.model.outputs).toHaveLength(1);
      const channels = featureChannels(probe);
      expect(channels, 'the model\'s output shape must give the channel count').toBeGreaterThan(0);
      const features = probe.model.predict(images) as tf.Tensor;
      expect(features.shape).toEqual([batchSize, height / probe.outputStride, width / probe.outputStride, channels]);
      features.dispose();
    });

    it('predicts logits and class maps at the input size', () => {
      const model = build(1);
      const logits = model.predictLogits(images);
      const classes = model.predict(images);
      expect(logits.shape).toEqual([batchSize, height, width, numClasses]);
      expect(classes.shape).toEqual([batchSize, height, width]);
      expect(classes.dtype).toBe('int32');
      const values = classes.dataSync();
      expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...values)).toBeLessThan(numClasses);
      tf.dispose([logits, classes]);
      model.dispose();
    });

    it('drops no class at inference: the prediction is deterministic, equals the folded model and differs from every suppressed class', () => {
      const model = build(2);
      for (let i = 0; i < 2; i++) model.trainStep(images, labels, { progress: 1, learningRate });
      const first = model.predictLogits(images);
      const again = model.predictLogits(images);
      expect(Array.from(again.dataSync())).toEqual(Array.from(first.dataSync()));
      const folded = model.toFoldedModel();
      const foldedLogits = tf.tidy(() => resizeBilinear(folded.predict(images) as tf.Tensor4D, height, width));
      const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(foldedLogits, first))).dataSync()[0]);
      const scale = tf.tidy(() => tf.max(tf.abs(first)).dataSync()[0]);
      expect(gap).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      const sameClasses = tf.tidy(() => tf.all(tf.equal(tf.argMax(foldedLogits, -1), tf.argMax(first, -1))).dataSync()[0]);
      expect(sameClasses).toBe(1);
      for (let c = 0; c < numClasses; c++) {
        const suppressed = model.predictLogits(images, c);
        const change = tf.tidy(() => tf.max(tf.abs(tf.sub(suppressed, first))).dataSync()[0]);
        expect(change).toBeGreaterThan(0);
        suppressed.dispose();
      }
      tf.dispose([first, again, foldedLogits]);
      model.dispose();
    });

    it('the suppression term pushes the dropped class probability down', () => {
      const model = build(3, { weightDecay: 0 });
      const dropped = 1;
      const sup: number[] = [];
      for (let i = 0; i < 8; i++) sup.push(model.trainStep(images, labels, { progress: 1, learningRate: 0.05, droppedClass: dropped }).lossSup);
      expect(sup[sup.length - 1]).toBeLessThan(sup[0]);
      model.dispose();
    });

    it('draws the dropped class with probability equal to progress, and never for a baseline', () => {
      const model = build(4);
      const atStart = Array.from({ length: 6 }, () => model.trainStep(images, labels, { progress: 0, learningRate: 0 }).droppedClass);
      const atEnd = Array.from({ length: 6 }, () => model.trainStep(images, labels, { progress: 1, learningRate: 0 }).droppedClass);
      expect(atStart.every((z) => z === NO_CLASS_DROPPED)).toBe(true);
      expect(atEnd.every((z) => z >= 0 && z < numClasses)).toBe(true);
      model.dispose();
      const baseline = build(4, { dropclass: false });
      const step = baseline.trainStep(images, labels, { progress: 1, learningRate });
      expect(step.droppedClass).toBe(NO_CLASS_DROPPED);
      expect(step.lossDrop).toBe(0);
      expect(step.lossSup).toBe(0);
      expect(step.total).toBeCloseTo(step.lossCe, 6);
      baseline.dispose();
    });

    it('adds exactly the feature-selection layer over the baseline', () => {
      const withDropClass = build(5);
      const baseline = build(5, { dropclass: false });
      const c = featureChannels(probe);
      expect(withDropClass.countParams() - baseline.countParams()).toBe(c * c + c + 2 * c);
      withDropClass.dispose();
      baseline.dispose();
    });

    it('gradients reach the first layer of the backbone', () => {
      const model = build(6, { weightDecay: 0 });
      const first = model.features.trainableWeights[0];
      const before = first.read().clone();
      model.trainStep(images, labels, { progress: 0.5, learningRate });
      const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(first.read(), before))).dataSync()[0]);
      expect(moved).toBeGreaterThan(0);
      before.dispose();
      model.dispose();
    });

    it('keeps tf.memory().numTensors unchanged across 20 training steps', () => {
      const model = build(7);
      model.trainStep(images, labels, { progress: 0.5, learningRate });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) model.trainStep(images, labels, { progress: i / 20, learningRate });
      tf.dispose(model.predict(images));
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it('save -> load gives identical predictions and training state', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dropclass-conformance-'));
      const model = build(8);
      for (let i = 0; i < 2; i++) model.trainStep(images, labels, { progress: 0.5, learningRate });
      await saveModel(model, dir);
      const loaded = await loadModel(dir);
      const a = model.predictLogits(images);
      const b = loaded.predictLogits(images);
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      expect(loaded.step).toBe(2);
      const next = model.trainStep(images, labels, { progress: 0.5, learningRate });
      const resumed = loaded.trainStep(images, labels, { progress: 0.5, learningRate });
      expect(resumed).toEqual(next);
      tf.dispose([a, b]);
      model.dispose();
      loaded.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    it('the same seed gives the same losses', () => {
      const run = (seed: number) => {
        const model = build(seed);
        const losses = Array.from({ length: 3 }, (_, i) => model.trainStep(images, labels, { progress: i / 2, learningRate }));
        model.dispose();
        return losses;
      };
      // seed 0 included: tfjs initialisers read a seed of 0 as "no seed"
      const a = run(0);
      expect(run(0)).toEqual(a);
      expect(run(10)[0].total).not.toBe(a[0].total);
    });

    it('refuses a wrong channel count and an input size the backbone cannot take, naming what would work', () => {
      const model = build(11);
      const wrongChannels = tf.zeros([1, height, width, probe.inputChannels + 1]) as tf.Tensor4D;
      expect(() => model.predict(wrongChannels)).toThrow(new RegExp(`takes ${probe.inputChannels}`));
      wrongChannels.dispose();
      const m = probe.inputSizeMultiple;
      const badHeight = m > 1 ? height + 1 : probe.minInputSize - 1;
      if (badHeight >= 1) {
        const bad = tf.zeros([1, badHeight, width, probe.inputChannels]) as tf.Tensor4D;
        const nearest = `${nearestValidSize(badHeight, m, probe.minInputSize)}x${width}`;
        expect(() => model.predict(bad)).toThrow(new RegExp(`nearest size that works is ${nearest}`));
        bad.dispose();
      }
      model.dispose();
    });

    if (options.adapter) {
      const adapter = options.adapter;
      it(`is registered as "${adapter.name}" and owns its options: defaults filled in, unknown options refused`, () => {
        expect(getBackbone(adapter.name), `importing the package must call registerBackbone(${adapter.name})`).toBe(adapter);
        expect(adapter.parseOptions({})).toEqual(adapter.defaults);
        expect(adapter.parseOptions(adapter.parseOptions({}))).toEqual(adapter.defaults);
        expect(() => adapter.parseOptions({ notAnOptionOfThisBackbone: 1 })).toThrow(BackboneOptionsError);
        expect(() => adapter.parseOptions({ notAnOptionOfThisBackbone: 1 })).toThrow(/notAnOptionOfThisBackbone/);
      });

      it('a model built through the registry saves its kind, package and options, and loads again', async () => {
        const raw = options.adapterOptions ?? {};
        const backbone = createBackbone(adapter.name, raw, { seed: 1 });
        expect(backbone.source).toEqual({ kind: adapter.name, ...(adapter.package ? { package: adapter.package } : {}), options: adapter.parseOptions(raw) });
        const model = DropClassModel.create(backbone, { numClasses, seed: 1 });
        const dir = await mkdtemp(join(tmpdir(), 'dropclass-conformance-'));
        try {
          await saveModel(model, dir);
          const loaded = await loadModel(dir);
          expect(loaded.info.backbone.source).toEqual(backbone.source);
          loaded.dispose();
        } finally {
          model.dispose();
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
}
