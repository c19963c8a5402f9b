import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { createBatchStream, openDataset } from '../src/index.js';

/** Loader throughput at Cityscapes size: 2048x1024 PNG pairs, 1024x512 crops, batches of 4. */
const count = 8;
const root = await mkdtemp(join(tmpdir(), 'dropclass-loader-'));
await writeFile(join(root, 'classes.json'), JSON.stringify(Array.from({ length: 19 }, (_, i) => `class ${i}`)));
const [width, height] = [2048, 1024];
for (let i = 0; i < count; i++) {
  const rgb = new Uint8Array(width * height * 3);
  const ids = new Uint8Array(width * height);
  for (let p = 0; p < width * height; p++) {
    const x = p % width;
    const y = Math.floor(p / width);
    rgb[3 * p] = (x * 7 + i) & 255;
    rgb[3 * p + 1] = (y * 5) & 255;
    rgb[3 * p + 2] = ((x ^ y) + i * 13) & 255;
    ids[p] = ((x >> 7) + (y >> 7) + i) % 19;
  }
  await mkdir(join(root, 'train', 'images'), { recursive: true });
  await mkdir(join(root, 'train', 'masks'), { recursive: true });
  await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toFile(join(root, 'train', 'images', `s${i}.png`));
  await writeFile(join(root, 'train', 'masks', `s${i}.png`), encodePng({ width, height, data: ids, channels: 1, depth: 8 }));
}
await tf.setBackend('cpu');
const ds = await openDataset({ kind: 'folder', root, split: 'train' });

let t0 = performance.now();
for (let i = 0; i < count; i++) await ds.get(i);
const decodeOnly = (performance.now() - t0) / 1000;

t0 = performance.now();
let images = 0;
for await (const batch of createBatchStream(ds, { batchSize: 4, crop: [512, 1024], scale: [0.5, 1.5], flip: true, seed: 0, epochs: 2, prefetch: 2 })) {
  images += batch.images.shape[0];
  tf.dispose([batch.images, batch.labels]);
}
const pipeline = (performance.now() - t0) / 1000;
console.log(`${count} PNG pairs of 2048x1024 (image + label), 2 epochs, batches of 4, crops 1024x512, scale 0.5-1.5, flip`);
console.log(`decode only (sharp image + fast-png label): ${(count / decodeOnly).toFixed(2)} samples/s`);
console.log(`decode + augment + batch:                   ${(images / pipeline).toFixed(2)} images/s`);
