/** Writers for small datasets in the real on-disk formats, for tests of code that reads them. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import type { Rgb } from './types.js';

/** Writes an RGB image (PNG or JPEG by extension) filled by `color(x, y)`. */
export async function writeImage(file: string, width: number, height: number, color: (x: number, y: number) => Rgb): Promise<void> {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(color(x, y), (y * width + x) * 3);
  await mkdir(dirname(file), { recursive: true });
  const img = sharp(data, { raw: { width, height, channels: 3 } });
  await (file.endsWith('.jpg') ? img.jpeg({ quality: 95 }) : img.png()).toFile(file);
}

/** Writes a label PNG: single-channel ids, or palette indices when a palette is given. */
export async function writeLabel(file: string, width: number, height: number, value: (x: number, y: number) => number, palette?: Rgb[]): Promise<void> {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value(x, y);
  await mkdir(dirname(file), { recursive: true });
  const full = palette ? Array.from({ length: 256 }, (_, i) => palette[i] ?? [224, 224, 192]) : undefined;
  await writeFile(file, encodePng({ width, height, data, channels: 1, depth: 8, ...(full ? { palette: full } : {}) }));
}
