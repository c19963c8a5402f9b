// Loads a `dropclass export` with @tensorflow/tfjs alone (cpu backend, no @dropclass package) and
// predicts a batch as the model's metadata says: node plain-tfjs-predict.mjs EXPORT_DIR IMAGES.bin H,W,B OUT_PREFIX
// IMAGES.bin: float32 NHWC, already normalised. Writes OUT_PREFIX.logits.bin (float32, input size) and OUT_PREFIX.classes.bin (int32).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

const [dir, imagesFile, dims, outPrefix] = process.argv.slice(2);
await tf.setBackend('cpu');
const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
const shards = await Promise.all(modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => readFile(join(dir, p))));
const weightData = new Uint8Array(shards.reduce((n, b) => n + b.byteLength, 0));
let at = 0;
for (const b of shards) {
  weightData.set(b, at);
  at += b.byteLength;
}
const model = await tf.loadLayersModel(
  tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: weightData.buffer,
    userDefinedMetadata: modelJson.userDefinedMetadata,
  }),
);
const meta = model.getUserDefinedMetadata().dropclass;
const [batch, height, width] = dims.split(',').map(Number);
const raw = await readFile(imagesFile);
const images = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [batch, height, width, meta.input.channels]);
const logits = tf.tidy(() => {
  const y = model.predict(images);
  return meta.output.stride === 1 ? y : tf.image.resizeBilinear(y, [height, width], false, true);
});
const classes = tf.argMax(logits, -1);
await writeFile(`${outPrefix}.logits.bin`, Buffer.from((await logits.data()).buffer));
await writeFile(`${outPrefix}.classes.bin`, Buffer.from((await classes.data()).buffer));
process.stdout.write(JSON.stringify({ backend: tf.getBackend(), layers: model.layers.map((l) => l.getClassName()) }));
tf.dispose([images, logits, classes]);
model.dispose();
