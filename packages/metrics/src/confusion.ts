/**
 * Label of pixels without a class, ignored by default: the value `IGNORE_INDEX` of @dropclass/core
 * and @dropclass/datasets (this package does not depend on them; a test checks that they agree).
 */
export const IGNORE_INDEX = 255;

/** Integer class ids: typed arrays, or a tensor-like object that can give them synchronously. */
export type IdArray = Uint8Array | Int32Array | Uint16Array | Uint32Array | { dataSync(): ArrayLike<number> };

export interface SegmentationResult {
  numClasses: number;
  /** Intersection over union per class; NaN for a class absent from both labels and predictions. */
  iou: number[];
  /** Mean IoU over the classes whose IoU is not NaN. */
  mIoU: number;
  pixelAccuracy: number;
  /** Per-class accuracy (recall): NaN for a class absent from the labels. */
  accuracy: number[];
  meanAccuracy: number;
  /** IoU weighted by each class's share of labelled pixels. */
  frequencyWeightedIoU: number;
  /** Per-class Dice / F1; NaN where IoU is. */
  dice: number[];
  /** Labelled pixels per class (row sums). */
  support: number[];
}

export interface ConfusionMatrixJSON {
  format: 'dropclass-confusion/1';
  numClasses: number;
  ignoreIndex: number;
  /** Row-major `K x K`, rows = true class, columns = predicted class. */
  counts: number[];
}

const values = (x: IdArray): ArrayLike<number> => ('dataSync' in x ? x.dataSync() : x);

/** NaN-aware mean: classes with no defined value are left out. */
export function nanMean(xs: number[]): number {
  const defined = xs.filter((x) => !Number.isNaN(x));
  return defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : Number.NaN;
}

/**
 * A streaming confusion matrix (rows = true class, columns = predicted, as scikit-learn's
 * `confusion_matrix`). Pixels labelled `ignoreIndex` are not counted.
 */
export class ConfusionMatrix {
  readonly counts: Float64Array;
  readonly ignoreIndex: number;

  constructor(
    readonly numClasses: number,
    options: { ignoreIndex?: number } = {},
  ) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
    this.ignoreIndex = options.ignoreIndex ?? IGNORE_INDEX;
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** Adds one prediction/label pair (any shape, flattened; equal lengths). */
  update(prediction: IdArray, label: IdArray): this {
    const p = values(prediction);
    const l = values(label);
    if (p.length !== l.length) {
      throw new RangeError(`prediction has ${p.length} values but label has ${l.length}; give one prediction per labelled pixel`);
    }
    const k = this.numClasses;
    const ignore = this.ignoreIndex;
    const counts = this.counts;
    for (let i = 0; i < l.length; i++) {
      const t = l[i];
      if (t === ignore) continue;
      const q = p[i];
      if (!(t >= 0 && t < k) || !(q >= 0 && q < k)) this.refuse(t, q, i);
      counts[t * k + q]++;
    }
    return this;
  }

  private refuse(t: number, q: number, i: number): never {
    if (!(t >= 0 && t < this.numClasses)) {
      throw new RangeError(`label value ${t} at position ${i} is neither a class in 0..${this.numClasses - 1} nor the ignore index ${this.ignoreIndex}; check the label mapping`);
    }
    throw new RangeError(`prediction value ${q} at position ${i} is not a class in 0..${this.numClasses - 1}`);
  }

  /** Adds another matrix's counts (shards evaluated apart combine exactly). */
  merge(other: ConfusionMatrix): this {
    if (other.numClasses !== this.numClasses || other.ignoreIndex !== this.ignoreIndex) {
      throw new RangeError(`cannot merge a ${other.numClasses}-class matrix (ignore ${other.ignoreIndex}) into a ${this.numClasses}-class one (ignore ${this.ignoreIndex})`);
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    return this;
  }

  toJSON(): ConfusionMatrixJSON {
    return { format: 'dropclass-confusion/1', numClasses: this.numClasses, ignoreIndex: this.ignoreIndex, counts: Array.from(this.counts) };
  }

  static fromJSON(json: ConfusionMatrixJSON): ConfusionMatrix {
    if (json.format !== 'dropclass-confusion/1' || json.counts?.length !== json.numClasses * json.numClasses) {
      throw new Error(`not a dropclass-confusion/1 matrix of ${json.numClasses} classes (format ${JSON.stringify(json.format)}, ${json.counts?.length} counts)`);
    }
    const m = new ConfusionMatrix(json.numClasses, { ignoreIndex: json.ignoreIndex });
    m.counts.set(json.counts);
    return m;
  }

  result(): SegmentationResult {
    const k = this.numClasses;
    const tp: number[] = [];
    const rows = new Array<number>(k).fill(0);
    const cols = new Array<number>(k).fill(0);
    for (let t = 0; t < k; t++) {
      for (let q = 0; q < k; q++) {
        const v = this.counts[t * k + q];
        rows[t] += v;
        cols[q] += v;
      }
      tp.push(this.counts[t * k + t]);
    }
    const total = rows.reduce((a, b) => a + b, 0);
    const iou = tp.map((v, c) => (rows[c] + cols[c] - v > 0 ? v / (rows[c] + cols[c] - v) : Number.NaN));
    const accuracy = tp.map((v, c) => (rows[c] > 0 ? v / rows[c] : Number.NaN));
    const dice = tp.map((v, c) => (rows[c] + cols[c] > 0 ? (2 * v) / (rows[c] + cols[c]) : Number.NaN));
    let fw = 0;
    for (let c = 0; c < k; c++) if (rows[c] > 0 && !Number.isNaN(iou[c])) fw += (rows[c] / total) * iou[c];
    return {
      numClasses: k,
      iou,
      mIoU: nanMean(iou),
      pixelAccuracy: total > 0 ? tp.reduce((a, b) => a + b, 0) / total : Number.NaN,
      accuracy,
      meanAccuracy: nanMean(accuracy),
      frequencyWeightedIoU: total > 0 ? fw : Number.NaN,
      dice,
      support: rows,
    };
  }
}
