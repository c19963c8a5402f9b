import { readImage, readLabelPng } from './decode.js';
import { DatasetError } from './errors.js';
import { IGNORE_INDEX, type LabelMap, type Rgb, type Sample, type SegmentationDataset, type SkippedSample } from './types.js';

export interface SamplePair {
  id: string;
  image: string;
  label: string;
}

export interface PairedDatasetOptions {
  kind: string;
  root: string;
  split: string;
  pairs: SamplePair[];
  classNames: string[];
  palette: Rgb[];
  /** Maps stored label values to train ids (e.g. Cityscapes label ids); identity when absent. */
  toTrainIds?: Uint8Array;
  skipBad?: boolean;
}

/** Image/label pairs on disk, checked as they are read: sizes agree and every label is a class or 255. */
export class PairedDataset implements SegmentationDataset {
  readonly kind: string;
  readonly root: string;
  readonly split: string;
  readonly classNames: string[];
  readonly palette: Rgb[];
  readonly skipped: SkippedSample[] = [];
  private readonly pairs: SamplePair[];
  private readonly toTrainIds?: Uint8Array;
  private readonly skipBad: boolean;
  private readonly options: PairedDatasetOptions;

  constructor(options: PairedDatasetOptions) {
    this.options = options;
    this.kind = options.kind;
    this.root = options.root;
    this.split = options.split;
    this.pairs = options.pairs;
    this.classNames = options.classNames;
    this.palette = options.palette;
    this.toTrainIds = options.toTrainIds;
    this.skipBad = options.skipBad ?? false;
  }

  get length(): number {
    return this.pairs.length;
  }

  /** Ids of the samples, in order. */
  get ids(): string[] {
    return this.pairs.map((p) => p.id);
  }

  /** The image and label files of sample `index`. */
  pair(index: number): SamplePair {
    return this.pairs[index];
  }

  /**
   * Reads sample `index` as training would (decoding both files, comparing their sizes, checking
   * every label value) and returns what is wrong with it, or undefined when nothing is.
   */
  async problem(index: number): Promise<DatasetError | undefined> {
    try {
      await this.read(this.pairs[index]);
      return undefined;
    } catch (error) {
      if (error instanceof DatasetError) return error;
      throw error;
    }
  }

  /**
   * The same split without the samples whose ids are given (found bad before a run), recorded as
   * skipped; `skipBad` says whether reading a sample that is bad after all skips it or throws.
   */
  without(skip: Map<string, string>, skipBad = this.skipBad): PairedDataset {
    const kept = new PairedDataset({ ...this.options, skipBad, pairs: this.pairs.filter((p) => !skip.has(p.id)) });
    kept.skipped.push(...this.skipped, ...[...skip].map(([id, reason]) => ({ id, reason })));
    return kept;
  }

  async get(index: number): Promise<Sample> {
    if (!Number.isInteger(index) || index < 0 || index >= this.pairs.length) {
      throw new RangeError(`sample index ${index} is outside 0..${this.pairs.length - 1} of ${this.kind} ${this.split}`);
    }
    const pair = this.pairs[index];
    try {
      return await this.read(pair);
    } catch (error) {
      if (!this.skipBad || !(error instanceof DatasetError)) throw error;
      this.skipped.push({ id: pair.id, reason: error.message });
      // A bad sample is replaced by the next one, so batches keep their size.
      if (this.skipped.length >= this.pairs.length) throw new Error(`every sample of ${this.kind} ${this.split} under ${this.root} is bad`);
      return this.get((index + 1) % this.pairs.length);
    }
  }

  private async read(pair: SamplePair): Promise<Sample> {
    const [image, stored] = await Promise.all([readImage(pair.image), readLabelPng(pair.label)]);
    if (image.width !== stored.width || image.height !== stored.height) {
      throw new DatasetError(
        pair.label,
        `is ${stored.width}x${stored.height}`,
        `the size of its image ${pair.image} (${image.width}x${image.height})`,
        'Regenerate the label at the image size.',
      );
    }
    return { id: pair.id, image, label: this.trainIds(stored, pair.label) };
  }

  private trainIds(stored: LabelMap, file: string): LabelMap {
    const numClasses = this.classNames.length;
    const data = this.toTrainIds ? stored.data.map((v) => this.toTrainIds![v]) : stored.data;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v >= numClasses && v !== IGNORE_INDEX) {
        const x = i % stored.width;
        const y = Math.floor(i / stored.width);
        throw new DatasetError(
          file,
          `has label value ${stored.data[i]} at pixel (${x}, ${y})`,
          `a class id in 0..${numClasses - 1} or ${IGNORE_INDEX} (ignore)`,
          'Fix the mask, or list the missing class in the class names.',
        );
      }
    }
    return { data, width: stored.width, height: stored.height };
  }

  /** A one-line account of skipped samples, for the end of a run. */
  skippedSummary(): string {
    if (this.skipped.length === 0) return `${this.kind} ${this.split}: no sample skipped`;
    return [`${this.kind} ${this.split}: ${this.skipped.length} bad sample(s) skipped`, ...this.skipped.map((s) => `  ${s.id}: ${s.reason}`)].join('\n');
  }
}
