import { join, relative } from 'node:path';
import { listFiles, pairByKey, requireDirectory } from './files.js';
import { PairedDataset } from './paired.js';
import { IGNORE_INDEX, type Rgb, type SkippedSample } from './types.js';

/** The 19 Cityscapes training classes, their label ids and official colours. */
export const CITYSCAPES_CLASSES: { name: string; id: number; color: Rgb }[] = [
  { name: 'road', id: 7, color: [128, 64, 128] },
  { name: 'sidewalk', id: 8, color: [244, 35, 232] },
  { name: 'building', id: 11, color: [70, 70, 70] },
  { name: 'wall', id: 12, color: [102, 102, 156] },
  { name: 'fence', id: 13, color: [190, 153, 153] },
  { name: 'pole', id: 17, color: [153, 153, 153] },
  { name: 'traffic light', id: 19, color: [250, 170, 30] },
  { name: 'traffic sign', id: 20, color: [220, 220, 0] },
  { name: 'vegetation', id: 21, color: [107, 142, 35] },
  { name: 'terrain', id: 22, color: [152, 251, 152] },
  { name: 'sky', id: 23, color: [70, 130, 180] },
  { name: 'person', id: 24, color: [220, 20, 60] },
  { name: 'rider', id: 25, color: [255, 0, 0] },
  { name: 'car', id: 26, color: [0, 0, 142] },
  { name: 'truck', id: 27, color: [0, 0, 70] },
  { name: 'bus', id: 28, color: [0, 60, 100] },
  { name: 'train', id: 31, color: [0, 80, 100] },
  { name: 'motorcycle', id: 32, color: [0, 0, 230] },
  { name: 'bicycle', id: 33, color: [119, 11, 32] },
];

/** Label id -> train id, as the official table: the 19 classes, every other id (and -1, stored as 255) to 255. */
export const CITYSCAPES_TRAIN_IDS: Uint8Array = (() => {
  const table = new Uint8Array(256).fill(IGNORE_INDEX);
  CITYSCAPES_CLASSES.forEach((c, trainId) => {
    table[c.id] = trainId;
  });
  return table;
})();

const IMAGE_SUFFIX = '_leftImg8bit.png';
const LABEL_SUFFIX = '_gtFine_labelIds.png';

/** Cityscapes: `leftImg8bit/<split>/<city>/*_leftImg8bit.png` with `gtFine/<split>/<city>/*_gtFine_labelIds.png`. */
export async function openCityscapes(root: string, split: string, skipBad = false): Promise<PairedDataset> {
  const imageDir = join(root, 'leftImg8bit', split);
  const labelDir = join(root, 'gtFine', split);
  const fix = `Point root at the folder holding leftImg8bit/ and gtFine/, and split at one of train, val, test.`;
  await requireDirectory(imageDir, `Cityscapes images of split "${split}"`, fix);
  await requireDirectory(labelDir, `Cityscapes fine labels of split "${split}"`, fix);
  const key = (file: string, dir: string, suffix: string) => relative(dir, file).slice(0, -suffix.length);
  const images = new Map((await listFiles(imageDir, IMAGE_SUFFIX, true)).map((f) => [key(f, imageDir, IMAGE_SUFFIX), f]));
  const labels = new Map((await listFiles(labelDir, LABEL_SUFFIX, true)).map((f) => [key(f, labelDir, LABEL_SUFFIX), f]));
  const skipped: SkippedSample[] = [];
  const pairs = pairByKey(images, labels, labelDir, imageDir, skipBad, skipped);
  const dataset = new PairedDataset({
    kind: 'cityscapes',
    root,
    split,
    pairs,
    classNames: CITYSCAPES_CLASSES.map((c) => c.name),
    palette: CITYSCAPES_CLASSES.map((c) => c.color),
    toTrainIds: CITYSCAPES_TRAIN_IDS,
    skipBad,
  });
  dataset.skipped.push(...skipped);
  return dataset;
}
