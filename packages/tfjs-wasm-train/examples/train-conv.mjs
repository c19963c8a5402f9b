// Trains a small conv net, plain tfjs-layers, on tfjs's wasm backend in Node: conv2d, depthwise
// conv2d, batch norm and max pooling all need gradient kernels that stock tfjs-backend-wasm lacks.
// Run: node examples/train-conv.mjs (threads: DROPCLASS_THREADS=N, default every core, at most 8).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, wasmThreadCount } from '@dropclass/tfjs-wasm-train';

await initBackend({ backend: 'wasm' });

// 16x16 images holding one bar, horizontal (class 0) or vertical (class 1), at a random place.
const size = 16;
const count = 128;
let seed = 1;
const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
const pixels = new Float32Array(count * size * size);
const classes = new Int32Array(count);
for (let n = 0; n < count; n++) {
  classes[n] = n % 2;
  const at = Math.floor(random() * (size - 4)) + 2;
  for (let i = 0; i < size; i++) {
    const [row, column] = classes[n] === 0 ? [at, i] : [i, at];
    pixels[n * size * size + row * size + column] = 1;
  }
  for (let p = 0; p < size * size; p++) pixels[n * size * size + p] += 0.2 * (random() - 0.5);
}
const images = tf.tensor4d(pixels, [count, size, size, 1]);
const labels = tf.oneHot(tf.tensor1d(classes, 'int32'), 2);

const model = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [size, size, 1], filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.heNormal({ seed: 1 }) }),
    tfl.layers.batchNormalization(),
    tfl.layers.reLU(),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthwiseInitializer: tfl.initializers.heNormal({ seed: 2 }) }),
    tfl.layers.reLU(),
    tfl.layers.globalAveragePooling2d({}),
    tfl.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
  ],
});
model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

const before = model.evaluate(images, labels);
const [lossBefore] = await Promise.all(before.map((t) => t.data()));
const history = await model.fit(images, labels, { epochs: 10, batchSize: 32, shuffle: false, verbose: 0 });
const lossAfter = history.history.loss.at(-1);
const accuracy = history.history.acc.at(-1);
console.log(`backend ${tf.getBackend()} (${wasmThreadCount()} threads): loss ${lossBefore[0].toFixed(3)} -> ${lossAfter.toFixed(3)}, training accuracy ${accuracy.toFixed(2)}`);
tf.dispose([images, labels, ...before]);
model.dispose();
if (!(lossAfter < lossBefore[0] / 2)) {
  console.error('train-conv: the loss did not fall to half of its initial value');
  process.exit(1);
}
