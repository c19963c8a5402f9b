import { IGNORE_INDEX, type SegmentationDataset } from './types.js';

export interface ClassFrequencies {
  classNames: string[];
  /** Labelled pixels per class. */
  pixels: number[];
  /** Share of all labelled pixels per class. */
  fraction: number[];
  /** Per class, the labelled pixels of the images in which the class appears (for median-frequency balancing). */
  imagePixels: number[];
  ignored: number;
}

/** Pixel counts and shares of each class over a split (ignored pixels counted apart). */
export async function computeClassFrequencies(ds: SegmentationDataset): Promise<ClassFrequencies> {
  const k = ds.classNames.length;
  const pixels = new Array<number>(k).fill(0);
  const imagePixels = new Array<number>(k).fill(0);
  let ignored = 0;
  for (let i = 0; i < ds.length; i++) {
    const { label } = await ds.get(i);
    const counts = new Array<number>(k).fill(0);
    for (const v of label.data) {
      if (v === IGNORE_INDEX) ignored++;
      else counts[v]++;
    }
    const labelled = counts.reduce((a, b) => a + b, 0);
    counts.forEach((n, c) => {
      pixels[c] += n;
      if (n > 0) imagePixels[c] += labelled;
    });
  }
  const total = pixels.reduce((a, b) => a + b, 0);
  return { classNames: ds.classNames, pixels, fraction: pixels.map((p) => (total ? p / total : 0)), imagePixels, ignored };
}

/** How class weights are derived from a split's class frequencies (see {@link classBalanceWeights}). */
export type ClassBalance = 'inverse' | 'median';

/**
 * Class weights against class imbalance, from a split's frequencies:
 * - `inverse`: `w_c = 1 / (K f_c)`, `f_c` the class's share of the labelled pixels (so the
 *   pixel-weighted mean weight is 1);
 * - `median`: median-frequency balancing (Eigen & Fergus 2015, SegNet): `w_c = median(q) / q_c` with
 *   `q_c` the class's pixels over the labelled pixels of the images it appears in.
 * A class absent from the split gets weight 0 (it contributes no pixel either way).
 */
export function classBalanceWeights(frequencies: ClassFrequencies, balance: ClassBalance): number[] {
  const k = frequencies.pixels.length;
  if (balance === 'inverse') return frequencies.fraction.map((f) => (f > 0 ? 1 / (k * f) : 0));
  const q = frequencies.pixels.map((p, c) => (p > 0 ? p / frequencies.imagePixels[c] : 0));
  const present = q.filter((x) => x > 0).sort((a, b) => a - b);
  const mid = present.length / 2;
  const median = present.length % 2 ? present[Math.floor(mid)] : (present[mid - 1] + present[mid]) / 2;
  return q.map((x) => (x > 0 ? median / x : 0));
}
