import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { DatasetError } from './errors.js';
import type { SamplePair } from './paired.js';
import type { SkippedSample } from './types.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp']);

/** Refuses a missing directory, naming what it should hold. */
export async function requireDirectory(path: string, holds: string, fix: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) throw new DatasetError(path, 'does not exist or is not a directory', holds, fix);
}

/** Files directly in `dir` (or below it, with `recursive`) whose names end with `suffix`, sorted. */
export async function listFiles(dir: string, suffix: string | ((name: string) => boolean), recursive = false): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive });
  const accept = typeof suffix === 'string' ? (name: string) => name.endsWith(suffix) : suffix;
  return entries
    .filter((e) => e.isFile() && accept(e.name))
    .map((e) => join(e.parentPath ?? dir, e.name))
    .sort();
}

export const isImageFile = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
export const stem = (file: string) => basename(file, extname(file));

/**
 * Matches images and labels by key. An unmatched file is an error naming it, or, with `skipBad`,
 * is left out and recorded.
 */
export function pairByKey(
  images: Map<string, string>,
  labels: Map<string, string>,
  labelDir: string,
  imageDir: string,
  skipBad: boolean,
  skipped: SkippedSample[],
): SamplePair[] {
  const pairs: SamplePair[] = [];
  for (const [key, image] of images) {
    const label = labels.get(key);
    if (label) pairs.push({ id: key, image, label });
    else if (skipBad) skipped.push({ id: key, reason: `${image} has no label in ${labelDir}` });
    else throw new DatasetError(image, `has no label in ${labelDir}`, `a label file for every image`, 'Add the label, remove the image, or open the dataset with skipBad: true.');
  }
  for (const [key, label] of labels) {
    if (images.has(key)) continue;
    if (skipBad) skipped.push({ id: key, reason: `${label} has no image in ${imageDir}` });
    else throw new DatasetError(label, `has no image in ${imageDir}`, 'an image for every label file', 'Add the image, remove the label, or open the dataset with skipBad: true.');
  }
  return pairs.sort((a, b) => a.id.localeCompare(b.id));
}

export function fileExists(path: string): boolean {
  return existsSync(path);
}
