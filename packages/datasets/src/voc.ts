import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatasetError } from './errors.js';
import { fileExists, requireDirectory } from './files.js';
import { PairedDataset, type SamplePair } from './paired.js';
import type { Rgb, SkippedSample } from './types.js';

export const VOC_CLASS_NAMES = [
  'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
];

/** The VOC colour map: the bits of the class index spread over the high bits of r, g and b. */
export function vocPalette(count = VOC_CLASS_NAMES.length): Rgb[] {
  return Array.from({ length: count }, (_, index) => {
    const rgb: Rgb = [0, 0, 0];
    let c = index;
    for (let shift = 7; shift >= 0 && c > 0; shift--, c >>= 3) {
      for (let channel = 0; channel < 3; channel++) rgb[channel] |= ((c >> channel) & 1) << shift;
    }
    return rgb;
  });
}

export interface VocOptions {
  /** Read labels from `SegmentationClassAug` (grey-level index PNGs) instead of `SegmentationClass`. */
  augmented?: boolean;
  skipBad?: boolean;
}

/** PASCAL VOC 2012: ids from `ImageSets/Segmentation/<split>.txt`, `JPEGImages/<id>.jpg`, palette PNG masks. */
export async function openVoc(root: string, split: string, options: VocOptions = {}): Promise<PairedDataset> {
  const labelFolder = options.augmented ? 'SegmentationClassAug' : 'SegmentationClass';
  const fix = 'Point root at VOCdevkit/VOC2012 (the folder holding JPEGImages/, SegmentationClass/ and ImageSets/).';
  await requireDirectory(root, 'the VOC2012 folder', fix);
  await requireDirectory(join(root, labelFolder), `the ${labelFolder} masks`, fix);
  const listFile = join(root, 'ImageSets', 'Segmentation', `${split}.txt`);
  const text = await readFile(listFile, 'utf8').catch(() => {
    throw new DatasetError(listFile, 'is missing', `the list of ids of split "${split}"`, 'Check the split name (train, val, trainval) and the root.');
  });
  const ids = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const skipBad = options.skipBad ?? false;
  const skipped: SkippedSample[] = [];
  const pairs: SamplePair[] = [];
  for (const id of ids) {
    const image = join(root, 'JPEGImages', `${id}.jpg`);
    const label = join(root, labelFolder, `${id}.png`);
    const missing = !fileExists(image) ? image : !fileExists(label) ? label : undefined;
    if (!missing) pairs.push({ id, image, label });
    else if (skipBad) skipped.push({ id, reason: `${missing} is missing` });
    else throw new DatasetError(missing, 'is missing', `an image and a mask for every id listed in ${listFile}`, 'Restore the file, remove the id from the list, or open the dataset with skipBad: true.');
  }
  const dataset = new PairedDataset({ kind: 'voc', root, split, pairs, classNames: VOC_CLASS_NAMES, palette: vocPalette(), skipBad });
  dataset.skipped.push(...skipped);
  return dataset;
}
