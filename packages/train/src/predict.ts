import { readdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { type DropClassModel, type InferenceOptions, checkInferenceOptions, inferClasses } from '@dropclass/core';
import { DatasetError, type Rgb, readImage } from '@dropclass/datasets';
import { renderOverlay } from '@dropclass/metrics';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';

const IMAGE = /\.(png|jpe?g|webp|tiff?|bmp)$/i;

async function inputFiles(input: string): Promise<string[]> {
  const info = await stat(input).catch(() => {
    throw new Error(`${input}: no such file or directory; give an image or a folder of images`);
  });
  if (!info.isDirectory()) return [input];
  const files = (await readdir(input)).filter((f) => IMAGE.test(f)).sort().map((f) => join(input, f));
  if (files.length === 0) throw new Error(`${input} holds no PNG or JPEG image`);
  return files;
}

/** The images of a prediction that cannot be read, listed at once before anything is written. */
export class PredictInputError extends Error {}

/**
 * Reads every input image before any prediction, so that a corrupt one stops nothing half-way:
 * the bad ones are listed at once (an error), or with `skipBad` left out and returned.
 */
export async function checkInputs(input: string, skipBad: boolean): Promise<{ files: string[]; skipped: { file: string; reason: string }[] }> {
  const all = await inputFiles(input);
  const files: string[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const file of all) {
    try {
      // decoded whole (a truncated file has a good header), then let go: prediction reads it again
      await readImage(file);
      files.push(file);
    } catch (error) {
      if (!(error instanceof DatasetError)) throw error;
      skipped.push({ file, reason: `${error.found}; expected ${error.expected}` });
    }
  }
  if (skipped.length && !skipBad) {
    throw new PredictInputError(
      [`${input}: ${skipped.length} of ${all.length} images cannot be read; nothing was predicted:`, ...skipped.map((s) => `  ${s.file}: ${s.reason}`), 'Replace or remove them, or pass --skip-bad to predict the others.'].join('\n'),
    );
  }
  if (files.length === 0) throw new PredictInputError(`${input}: none of its ${all.length} images can be read; nothing was predicted`);
  return { files, skipped };
}

/**
 * Predicts class maps for images of any size (whole-image: padded to a size the backbone takes and
 * cropped back; or window by window with `inference.window`) and writes a colour-coded mask and an
 * overlay per image.
 */
export async function predictFiles(
  model: DropClassModel,
  input: string,
  out: string,
  options: { palette: Rgb[]; mean: Rgb; std: Rgb; inference?: InferenceOptions; skipBad?: boolean; onSkipped?: (skipped: { file: string; reason: string }[]) => void },
): Promise<string[]> {
  const inference = checkInferenceOptions(options.inference ?? {}, model.info.backbone);
  const { files, skipped } = await checkInputs(input, options.skipBad ?? false);
  if (skipped.length) options.onSkipped?.(skipped);
  await mkdir(out, { recursive: true });
  const written: string[] = [];
  for (const file of files) {
    const image = await readImage(file);
    const normalised = tf.tidy(() => {
      const pixels = tf.tensor3d(image.data, [image.height, image.width, image.channels], 'float32');
      const rgb = image.channels >= 3 ? tf.slice(pixels, [0, 0, 0], [-1, -1, 3]) : tf.tile(tf.slice(pixels, [0, 0, 0], [-1, -1, 1]), [1, 1, 3]);
      return tf.expandDims(tf.div(tf.sub(rgb, options.mean), options.std), 0) as tf.Tensor4D;
    });
    const prediction = inferClasses(model, normalised, inference);
    const classes = prediction.dataSync() as Int32Array;
    tf.dispose([prediction, normalised]);
    const mask = new Uint8Array(image.width * image.height * 3);
    classes.forEach((c, i) => mask.set(options.palette[c] ?? [0, 0, 0], 3 * i));
    const stem = basename(file, extname(file));
    const maskFile = join(out, `${stem}_mask.png`);
    const overlayFile = join(out, `${stem}_overlay.png`);
    await sharp(mask, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(maskFile);
    await writeFile(overlayFile, await renderOverlay({ image, prediction: classes, palette: options.palette, scale: 1 }));
    written.push(maskFile, overlayFile);
  }
  return written;
}
