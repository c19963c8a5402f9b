import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropClassModel } from '@dropclass/core';
import { type PairedDataset, type Rgb, createEvalStream } from '@dropclass/datasets';
import { ConfusionMatrix, type DependencyMatrix, dependencyMatrix, formatDependency, renderDependencyHeatmap } from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import { paddingMultiple } from './evaluate.js';
import { Progress } from './progress.js';

/** The result of the diagnostic: the matrix and which channels were removed for each class. */
export interface DependencyDiagnostic extends DependencyMatrix {
  /** How the classes' features were removed, in words. */
  intervention: string;
  /** Per class z: the feature-map channels zeroed for it (its most important ones by relu(W[:, z])). */
  removedChannels: number[][];
}

/** Channels removed per class by default: one class's share of the feature map, C / K (at least 1). */
export function defaultRemovedChannels(channels: number, numClasses: number): number {
  return Math.max(1, Math.round(channels / numClasses));
}

/**
 * For each class z, the `count` channels with the largest importance `relu(W[:, z])` (the
 * classifier's weight, SPEC section 1); channels of zero importance are never taken.
 * `kernel` is `W` `[C,K]` row-major.
 */
export function mostImportantChannels(kernel: ArrayLike<number>, channels: number, numClasses: number, count: number): number[][] {
  if (kernel.length !== channels * numClasses) throw new RangeError(`a [${channels}, ${numClasses}] classifier kernel has ${channels * numClasses} values, got ${kernel.length}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`the number of channels to remove must be a positive integer, got ${count}`);
  return Array.from({ length: numClasses }, (_, z) =>
    Array.from({ length: channels }, (_, c) => ({ c, s: Math.max(0, kernel[c * numClasses + z]) }))
      .filter((x) => x.s > 0)
      .sort((x, y) => y.s - x.s || x.c - y.c)
      .slice(0, count)
      .map((x) => x.c)
      .sort((x, y) => x - y),
  );
}

/**
 * The class-dependency diagnostic, the same intervention for a baseline and a DropClass model: for
 * each class z, the `channels` feature-map channels most important to z (by the classifier's
 * weights) are zeroed before the head, and every class is evaluated again. Entry (z, d) of the
 * matrix is class d's IoU drop; off the diagonal it measures how much other classes lean on z's
 * features. The feature map is computed once per batch. Writes the matrix (Markdown, JSON) and its
 * heatmap.
 */
export async function diagnoseDependency(
  model: DropClassModel,
  ds: PairedDataset,
  options: { mean: Rgb; std: Rgb; out: string; title: string; channels?: number; batchSize?: number; /** Only the first this many images of the split. */ limit?: number },
): Promise<DependencyDiagnostic> {
  const k = model.numClasses;
  const featureChannels = model.info.backbone.channels;
  const count = options.channels ?? defaultRemovedChannels(featureChannels, k);
  const kernel = model.head.kernel.dataSync();
  const removed = mostImportantChannels(kernel, featureChannels, k, count);
  const masks = removed.map((list) => {
    const keep = new Float32Array(featureChannels).fill(1);
    for (const c of list) keep[c] = 0;
    return tf.tensor1d(keep);
  });
  const base = new ConfusionMatrix(k, { ignoreIndex: model.info.ignoreIndex });
  const suppressed = removed.map(() => new ConfusionMatrix(k, { ignoreIndex: model.info.ignoreIndex }));
  const images = Math.min(ds.length, options.limit ?? ds.length);
  const progress = new Progress('dependency', images, '{name}');
  progress.start(0, { name: ds.split });
  let done = 0;
  try {
    const batchSize = Math.min(options.batchSize ?? 8, images);
    for await (const batch of createEvalStream(ds, { batchSize, padToMultiple: paddingMultiple(model), mean: options.mean, std: options.std })) {
      const [, height, width] = batch.images.shape;
      const labels = batch.labels.dataSync() as Int32Array;
      const features = model.features.apply(batch.images, { training: false }) as tf.Tensor4D;
      const predict = (mask?: tf.Tensor1D) =>
        tf.tidy(() => {
          const logits = model.head.inferenceLogits(mask ? tf.mul(features, mask) : features);
          // bilinear with half-pixel centres, as the model's predictions (no gradient needed here)
          return tf.argMax(tf.image.resizeBilinear(logits, [height, width], false, true), -1).dataSync() as Int32Array;
        });
      base.update(predict(), labels);
      masks.forEach((mask, z) => suppressed[z].update(predict(mask), labels));
      tf.dispose([features, batch.images, batch.labels]);
      done += batch.samples.length;
      progress.update(done, { name: ds.split });
      if (done >= images) break;
    }
  } finally {
    progress.stop();
    tf.dispose(masks);
  }
  const intervention = `for each class z, the ${count} of ${featureChannels} feature-map channels with the largest relu(W[:, z]) are zeroed before the head (${done === ds.length ? `all ${done}` : `the first ${done} of ${ds.length}`} ${ds.split} images)`;
  const dep: DependencyDiagnostic = {
    ...dependencyMatrix(base.result(), suppressed.map((m) => m.result()), ds.classNames),
    intervention,
    removedChannels: removed,
  };
  await mkdir(options.out, { recursive: true });
  await writeFile(join(options.out, 'dependency.json'), JSON.stringify(dep, (_, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2));
  await writeFile(join(options.out, 'dependency.md'), `# ${options.title}\n\nIntervention: ${intervention}.\n\n${formatDependency(dep, 'markdown')}\n\n![heatmap](dependency.png)\n`);
  await writeFile(join(options.out, 'dependency.png'), await renderDependencyHeatmap(dep, options.title));
  return dep;
}
