import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dropclass/core/rng';
import sharp from 'sharp';
import { IGNORE_INDEX, type Rgb, type Sample, type SegmentationDataset } from './types.js';

/** ImageNet statistics on the 0..255 scale, the usual normalisation for segmentation backbones. */
export const IMAGENET_MEAN: Rgb = [123.675, 116.28, 103.53];
export const IMAGENET_STD: Rgb = [58.395, 57.12, 57.375];

export interface BatchOptions {
  batchSize: number;
  /** Crop `[height, width]` taken from every (rescaled) sample, padded where the sample is smaller. */
  crop?: [number, number];
  /** Random rescaling range `[min, max]`; default `[1, 1]`. */
  scale?: [number, number];
  /** Random horizontal flip. */
  flip?: boolean;
  mean?: Rgb;
  std?: Rgb;
  seed?: number;
  /** Shuffle every epoch (by seed and epoch). Default true. */
  shuffle?: boolean;
  /** Passes over the data; default unlimited. */
  epochs?: number;
  /** Batches to skip without decoding them, to resume a run where it stopped. */
  startBatch?: number;
  /** Leave out the last incomplete batch of an epoch. Default true when shuffling. */
  dropLast?: boolean;
  /** Batches decoded ahead of the consumer. Default 2. */
  prefetch?: number;
  /** Pad height and width up to a multiple of this (label 255), for evaluation on whole images. */
  padToMultiple?: number;
}

export interface Batch {
  /** `[B,H,W,3]` float32, normalised. */
  images: tf.Tensor4D;
  /** `[B,H,W]` int32 train ids, 255 = ignore. */
  labels: tf.Tensor3D;
  ids: string[];
  /** The (augmented, padded) samples before normalisation, for pictures. */
  samples: Sample[];
}

interface Augmentation {
  scale: number;
  flip: boolean;
  /** Crop offset as a fraction of the free room. */
  offsetY: number;
  offsetX: number;
}

async function resize(sample: Sample, scale: number): Promise<Sample> {
  if (scale === 1) return sample;
  const { image, label } = sample;
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const [img, lab] = await Promise.all([
    sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels as 3 } }).resize(width, height, { kernel: 'linear', fit: 'fill' }).raw().toBuffer(),
    // sharp hands a single-channel raw input back as sRGB unless told to keep one channel
    sharp(label.data, { raw: { width: label.width, height: label.height, channels: 1 } }).resize(width, height, { kernel: 'nearest', fit: 'fill' }).extractChannel(0).raw().toBuffer(),
  ]);
  return { id: sample.id, image: { data: new Uint8Array(img), width, height, channels: image.channels }, label: { data: new Uint8Array(lab), width, height } };
}

/** Crops (padding with the mean colour and the ignore index where needed) and flips. */
function cropAndFlip(sample: Sample, height: number, width: number, aug: Augmentation, mean: Rgb): Sample {
  const { image, label } = sample;
  const c = image.channels;
  const top = Math.floor(aug.offsetY * Math.max(0, image.height - height));
  const left = Math.floor(aug.offsetX * Math.max(0, image.width - width));
  const rgb = new Uint8Array(height * width * c);
  const ids = new Uint8Array(height * width).fill(IGNORE_INDEX);
  for (let i = 0; i < height * width; i++) rgb.set(mean.map(Math.round).slice(0, c), i * c);
  for (let y = 0; y < Math.min(height, image.height - top); y++) {
    for (let x = 0; x < Math.min(width, image.width - left); x++) {
      const src = (y + top) * image.width + (x + left);
      const dx = aug.flip ? width - 1 - x : x;
      const dst = y * width + dx;
      rgb.set(image.data.subarray(src * c, src * c + c), dst * c);
      ids[dst] = label.data[src];
    }
  }
  return { id: sample.id, image: { data: rgb, width, height, channels: c }, label: { data: ids, width, height } };
}

function permutation(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const mix = (a: number, b: number, c: number) => (Math.imul(a + 1, 2654435761) ^ Math.imul(b + 1, 40503) ^ Math.imul(c + 1, 2246822519)) >>> 0;

/** Which samples batch `g` holds: a function of the seed alone, so any batch can be found without the ones before. */
function batchIndices(g: number, n: number, options: Required<Pick<BatchOptions, 'batchSize' | 'seed' | 'shuffle' | 'dropLast'>>): { epoch: number; indices: number[] } {
  const perEpoch = options.dropLast ? Math.floor(n / options.batchSize) : Math.ceil(n / options.batchSize);
  const epoch = Math.floor(g / perEpoch);
  const order = options.shuffle ? permutation(n, new Rng(mix(options.seed, epoch, 0))) : Array.from({ length: n }, (_, i) => i);
  const start = (g % perEpoch) * options.batchSize;
  return { epoch, indices: order.slice(start, Math.min(n, start + options.batchSize)) };
}

/** Prepares one sample: rescale, crop/pad, flip. The augmentation depends on (seed, epoch, sample) only. */
async function prepare(ds: SegmentationDataset, index: number, epoch: number, options: BatchOptions, mean: Rgb): Promise<Sample> {
  const rng = new Rng(mix(options.seed ?? 0, epoch, index + 1));
  const [lo, hi] = options.scale ?? [1, 1];
  const aug: Augmentation = { scale: lo + (hi - lo) * rng.next(), flip: (options.flip ?? false) && rng.next() < 0.5, offsetY: rng.next(), offsetX: rng.next() };
  const sample = await resize(await ds.get(index), aug.scale);
  let [height, width] = options.crop ?? [sample.image.height, sample.image.width];
  if (options.padToMultiple) {
    const m = options.padToMultiple;
    height = Math.ceil(height / m) * m;
    width = Math.ceil(width / m) * m;
  }
  return cropAndFlip(sample, height, width, aug, mean);
}

function toTensors(samples: Sample[], mean: Rgb, std: Rgb): { images: tf.Tensor4D; labels: tf.Tensor3D } {
  const { height, width } = samples[0].image;
  for (const s of samples) {
    if (s.image.height !== height || s.image.width !== width) {
      throw new Error(`samples of one batch differ in size (${s.id} is ${s.image.width}x${s.image.height}, not ${width}x${height}); give a crop size or use batch size 1`);
    }
  }
  const pixels = height * width;
  const images = new Float32Array(samples.length * pixels * 3);
  const labels = new Int32Array(samples.length * pixels);
  samples.forEach((s, b) => {
    const c = s.image.channels;
    for (let i = 0; i < pixels; i++) {
      for (let k = 0; k < 3; k++) images[(b * pixels + i) * 3 + k] = (s.image.data[i * c + Math.min(k, c - 1)] - mean[k]) / std[k];
      labels[b * pixels + i] = s.label.data[i];
    }
  });
  return { images: tf.tensor4d(images, [samples.length, height, width, 3]), labels: tf.tensor3d(labels, [samples.length, height, width], 'int32') };
}

/**
 * Batches of a dataset as an async iterable: shuffled per epoch by seed, augmented, normalised,
 * decoded `prefetch` batches ahead of the consumer. The consumer disposes each batch's tensors.
 */
export async function* createBatchStream(ds: SegmentationDataset, options: BatchOptions): AsyncGenerator<Batch> {
  const mean = options.mean ?? IMAGENET_MEAN;
  const std = options.std ?? IMAGENET_STD;
  const shuffle = options.shuffle ?? true;
  const settings = { batchSize: options.batchSize, seed: options.seed ?? 0, shuffle, dropLast: options.dropLast ?? shuffle };
  if (ds.length === 0) throw new Error(`${ds.kind} ${ds.split} under ${ds.root} has no samples`);
  if (settings.dropLast && ds.length < options.batchSize) {
    throw new Error(`${ds.kind} ${ds.split} has ${ds.length} samples, fewer than one batch of ${options.batchSize}; lower the batch size`);
  }
  const perEpoch = settings.dropLast ? Math.floor(ds.length / options.batchSize) : Math.ceil(ds.length / options.batchSize);
  const end = options.epochs === undefined ? Infinity : options.epochs * perEpoch;
  const read = (g: number) => {
    const { epoch, indices } = batchIndices(g, ds.length, settings);
    return Promise.all(indices.map((i) => prepare(ds, i, epoch, options, mean)));
  };
  const ahead = Math.max(1, options.prefetch ?? 2);
  const queue: Promise<Sample[]>[] = [];
  let next = options.startBatch ?? 0;
  // A batch read ahead may fail (a bad file) before it is awaited, or never be awaited when the
  // consumer stops early: its rejection is observed here, and thrown where the batch is awaited.
  const load = (g: number) => {
    const pending = read(g);
    pending.catch(() => {});
    return pending;
  };
  while (queue.length < ahead && next < end) queue.push(load(next++));
  while (queue.length > 0) {
    const samples = await queue.shift()!;
    if (next < end) queue.push(load(next++));
    const { images, labels } = toTensors(samples, mean, std);
    yield { images, labels, ids: samples.map((s) => s.id), samples };
  }
}

/** Whole images in order, no augmentation, padded to a multiple of `padToMultiple` with the ignore index. */
export function createEvalStream(ds: SegmentationDataset, options: { batchSize: number; padToMultiple?: number; mean?: Rgb; std?: Rgb; prefetch?: number }): AsyncGenerator<Batch> {
  return createBatchStream(ds, { ...options, shuffle: false, dropLast: false, epochs: 1 });
}
