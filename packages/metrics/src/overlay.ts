import sharp from 'sharp';
import { IGNORE_INDEX, type IdArray } from './confusion.js';

export type Rgb = [number, number, number];

export interface OverlayInput {
  /** RGB (or grey) bytes. */
  image: { data: Uint8Array; width: number; height: number; channels: number };
  prediction: IdArray;
  /** Ground truth; pixels labelled `IGNORE_INDEX` (255) show the image alone. */
  label?: IdArray;
  palette: Rgb[];
  /** Weight of the class colour over the image. Default 0.55. */
  alpha?: number;
  /** Integer upscaling (nearest) so small images stay readable. Default: up to about 256 px. */
  scale?: number;
}

const ids = (x: IdArray): ArrayLike<number> => ('dataSync' in x ? x.dataSync() : x);

function blend(input: OverlayInput, classes: ArrayLike<number> | undefined, alpha: number): Uint8Array {
  const { image, palette } = input;
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const cls = classes?.[i];
    const color = cls === undefined || cls === IGNORE_INDEX ? undefined : palette[cls];
    for (let k = 0; k < 3; k++) {
      const v = image.data[i * image.channels + Math.min(k, image.channels - 1)];
      out[i * 3 + k] = color ? Math.round((1 - alpha) * v + alpha * color[k]) : v;
    }
  }
  return out;
}

/**
 * A panel as PNG: the image | ground truth over it | prediction over it (the ground truth panel is
 * left out without a label). Class colours come from the dataset's palette.
 */
export async function renderOverlay(input: OverlayInput): Promise<Buffer> {
  const { width, height } = input.image;
  const alpha = input.alpha ?? 0.55;
  const prediction = ids(input.prediction);
  if (prediction.length !== width * height) throw new RangeError(`prediction has ${prediction.length} values for a ${width}x${height} image`);
  const panels = [blend(input, undefined, 0), ...(input.label ? [blend(input, ids(input.label), alpha)] : []), blend(input, prediction, alpha)];
  const scale = input.scale ?? Math.max(1, Math.floor(256 / Math.max(width, height)));
  const gap = 4;
  const tiles = await Promise.all(
    panels.map((p) => sharp(p, { raw: { width, height, channels: 3 } }).resize(width * scale, height * scale, { kernel: 'nearest' }).raw().toBuffer()),
  );
  const total = panels.length * width * scale + (panels.length - 1) * gap;
  return sharp({ create: { width: total, height: height * scale, channels: 3, background: '#ffffff' } })
    .composite(tiles.map((t, i) => ({ input: t, raw: { width: width * scale, height: height * scale, channels: 3 as const }, left: i * (width * scale + gap), top: 0 })))
    .png()
    .toBuffer();
}
