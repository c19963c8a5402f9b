/** An image as raw interleaved bytes. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** A label map of train ids (255 = ignore), one byte per pixel. */
export interface LabelMap {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Sample {
  id: string;
  image: RawImage;
  label: LabelMap;
}

export type Rgb = [number, number, number];

/** A split of a dataset on disk. */
export interface SegmentationDataset {
  readonly kind: string;
  readonly root: string;
  readonly split: string;
  readonly length: number;
  readonly classNames: string[];
  readonly palette: Rgb[];
  /** Decodes sample `i`; throws a `DatasetError` for a bad file unless the dataset skips bad samples. */
  get(index: number): Promise<Sample>;
  /** Samples skipped as bad so far (with `skipBad: true`). */
  readonly skipped: SkippedSample[];
}

export interface SkippedSample {
  id: string;
  reason: string;
}

/** Label of pixels without a class (the one definition is @dropclass/core's). */
export { IGNORE_INDEX } from '@dropclass/core';
