import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultPalette } from '@dropclass/core';
import { DatasetError } from './errors.js';
import { isImageFile, listFiles, pairByKey, requireDirectory, stem } from './files.js';
import { PairedDataset } from './paired.js';
import type { Rgb, SkippedSample } from './types.js';

export const CLASSES_JSON = 'classes.json';

/** `classes.json`: an array of names, or `{ names, palette }`. */
export interface ClassesFile {
  names: string[];
  palette?: Rgb[];
}

export async function readClassesFile(root: string): Promise<ClassesFile> {
  const file = join(root, CLASSES_JSON);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new DatasetError(file, 'is missing', 'a JSON array of class names, or {"names": [...], "palette": [[r,g,b], ...]}', 'Write classes.json at the dataset root.');
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DatasetError(file, `is not valid JSON (${(error as Error).message})`, 'a JSON array of class names or {"names", "palette"}', 'Fix the JSON.');
  }
  const names = Array.isArray(parsed) ? parsed : (parsed as ClassesFile)?.names;
  if (!Array.isArray(names) || names.length < 2 || names.some((n) => typeof n !== 'string')) {
    throw new DatasetError(file, `holds ${JSON.stringify(parsed).slice(0, 80)}`, 'at least two class names (strings)', 'List the class names in id order.');
  }
  const palette = Array.isArray(parsed) ? undefined : (parsed as ClassesFile).palette;
  if (palette && (palette.length !== names.length || palette.some((c) => !Array.isArray(c) || c.length !== 3))) {
    throw new DatasetError(file, `has a palette of ${palette.length} entries`, `one [r, g, b] per class (${names.length})`, 'Fix or remove the palette.');
  }
  return { names, palette };
}

/**
 * A folder dataset: `<root>/classes.json`, and per split `<root>/<split>/images/*` with
 * `<root>/<split>/masks/<stem>.png` (class ids, 255 = ignore), matched by file stem.
 */
export async function openFolderDataset(root: string, split: string, skipBad = false): Promise<PairedDataset> {
  await requireDirectory(root, 'a folder dataset (classes.json and one folder per split)', 'Check the dataset root path.');
  const classes = await readClassesFile(root);
  const imageDir = join(root, split, 'images');
  const maskDir = join(root, split, 'masks');
  const fix = `Check the split name "${split}"; a folder dataset keeps each split in <root>/<split>/images and <root>/<split>/masks.`;
  await requireDirectory(imageDir, `the images of split "${split}"`, fix);
  await requireDirectory(maskDir, `the masks of split "${split}"`, fix);
  const images = new Map((await listFiles(imageDir, isImageFile)).map((f) => [stem(f), f]));
  const masks = new Map((await listFiles(maskDir, '.png')).map((f) => [stem(f), f]));
  const skipped: SkippedSample[] = [];
  const pairs = pairByKey(images, masks, maskDir, imageDir, skipBad, skipped);
  const dataset = new PairedDataset({ kind: 'folder', root, split, pairs, classNames: classes.names, palette: classes.palette ?? defaultPalette(classes.names.length), skipBad });
  dataset.skipped.push(...skipped);
  return dataset;
}
