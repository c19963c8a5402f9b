import { IGNORE_INDEX, type SegmentationDataset } from './types.js';

export interface ClassFrequencies {
  classNames: string[];
  /** Labelled pixels per class. */
  pixels: number[];
  /** Share of all labelled pixels per class. */
  fraction: number[];
  ignored: number;
}

/** Pixel counts and shares of each class over a split (ignored pixels counted apart). */
export async function computeClassFrequencies(ds: SegmentationDataset): Promise<ClassFrequencies> {
  const pixels = new Array<number>(ds.classNames.length).fill(0);
  let ignored = 0;
  for (let i = 0; i < ds.length; i++) {
    const { label } = await ds.get(i);
    for (const v of label.data) {
      if (v === IGNORE_INDEX) ignored++;
      else pixels[v]++;
    }
  }
  const total = pixels.reduce((a, b) => a + b, 0);
  return { classNames: ds.classNames, pixels, fraction: pixels.map((p) => (total ? p / total : 0)), ignored };
}
