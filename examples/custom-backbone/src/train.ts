import * as tf from '@tensorflow/tfjs-core';
import { DropClassModel, polyLearningRate } from '@dropclass/core';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { createPlainFcn } from './plain-fcn.js';

/**
 * A short DropClass training of the plain FCN on a made-up problem: class = which quarter of the
 * image a bright square sits in, background elsewhere. Prints the three loss terms per step.
 */
await initBackend();
const numClasses = 5;
const steps = Number(process.env.STEPS ?? 30);
const model = DropClassModel.create(createPlainFcn({ seed: 0 }), { numClasses, seed: 0 });
console.log(`plain FCN + DropClass head: ${model.countParams().toLocaleString('en')} trainable parameters`);

function batch(step: number): { images: tf.Tensor4D; labels: tf.Tensor3D } {
  const size = 32;
  const images = new Float32Array(4 * size * size * 3);
  const labels = new Int32Array(4 * size * size);
  for (let b = 0; b < 4; b++) {
    const quarter = (step + b) % 4;
    const [qy, qx] = [Math.floor(quarter / 2) * 16, (quarter % 2) * 16];
    for (let y = qy + 4; y < qy + 12; y++) {
      for (let x = qx + 4; x < qx + 12; x++) {
        const p = (b * size + y) * size + x;
        images.fill(1, p * 3, p * 3 + 3);
        labels[p] = quarter + 1;
      }
    }
  }
  return { images: tf.tensor4d(images, [4, size, size, 3]), labels: tf.tensor3d(labels, [4, size, size], 'int32') };
}

for (let step = 0; step < steps; step++) {
  const { images, labels } = batch(step);
  const losses = model.trainStep(images, labels, { progress: step / steps, learningRate: polyLearningRate(0.05, step, steps) });
  tf.dispose([images, labels]);
  const dropped = losses.droppedClass < 0 ? 'none' : String(losses.droppedClass);
  console.log(`step ${String(step + 1).padStart(3)}  ce ${losses.lossCe.toFixed(4)}  ce(dropped) ${losses.lossDrop.toFixed(4)}  suppression ${losses.lossSup.toFixed(4)}  dropped ${dropped}`);
}
model.dispose();
