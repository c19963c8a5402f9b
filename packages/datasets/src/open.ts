import { openCityscapes } from './cityscapes.js';
import { openFolderDataset } from './folder.js';
import type { PairedDataset } from './paired.js';
import { openVoc } from './voc.js';

export type DatasetKind = 'cityscapes' | 'voc' | 'folder';

export interface OpenDatasetOptions {
  kind: DatasetKind;
  root: string;
  split: string;
  /** Skip bad samples (reported in `ds.skipped`) instead of stopping at the first. */
  skipBad?: boolean;
  /** VOC only: labels from SegmentationClassAug. */
  augmented?: boolean;
}

/** Opens one split of a dataset on disk. */
export async function openDataset(options: OpenDatasetOptions): Promise<PairedDataset> {
  switch (options.kind) {
    case 'cityscapes':
      return openCityscapes(options.root, options.split, options.skipBad);
    case 'voc':
      return openVoc(options.root, options.split, { augmented: options.augmented, skipBad: options.skipBad });
    case 'folder':
      return openFolderDataset(options.root, options.split, options.skipBad);
    default:
      throw new Error(`unknown dataset kind ${JSON.stringify((options as { kind: unknown }).kind)}; expected cityscapes, voc or folder`);
  }
}
