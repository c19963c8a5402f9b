import { ConfusionMatrix, IGNORE_INDEX, type IdArray, nanMean } from './confusion.js';
import type { ClassGroup } from './report.js';

export interface PerImageConfusionJSON {
  format: 'dropclass-per-image-confusion/1';
  numClasses: number;
  ignoreIndex: number;
  /** Per image, its non-zero confusion counts as flat `[index, count, index, count, ...]` (index = true * K + predicted). */
  images: number[][];
}

const values = (x: IdArray): ArrayLike<number> => ('dataSync' in x ? x.dataSync() : x);

/**
 * One confusion matrix per image, in evaluation order: what a bootstrap over images resamples.
 * Their sum is the split's confusion matrix.
 */
export class PerImageConfusion {
  /** Per image: indices (true * K + predicted) and counts of its non-zero cells. */
  private readonly cells: { index: Int32Array; count: Float64Array }[] = [];

  constructor(
    readonly numClasses: number,
    readonly ignoreIndex = IGNORE_INDEX,
  ) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  }

  get length(): number {
    return this.cells.length;
  }

  /** Adds one image's prediction and label (flattened, equal lengths). */
  addImage(prediction: IdArray, label: IdArray): this {
    const matrix = new ConfusionMatrix(this.numClasses, { ignoreIndex: this.ignoreIndex }).update(prediction, label);
    this.push(matrix.counts);
    return this;
  }

  /** Adds a batch of `images` images laid out one after the other (e.g. `[B,H,W]` flattened). */
  addBatch(prediction: IdArray, label: IdArray, images: number): this {
    const p = values(prediction);
    const l = values(label);
    if (p.length !== l.length || p.length % images !== 0) {
      throw new RangeError(`a batch of ${images} images needs equal prediction and label lengths divisible by ${images}, got ${p.length} and ${l.length}`);
    }
    const size = p.length / images;
    for (let i = 0; i < images; i++) {
      const part = (x: ArrayLike<number>) => Int32Array.from({ length: size }, (_, j) => x[i * size + j]);
      this.addImage(part(p), part(l));
    }
    return this;
  }

  private push(counts: Float64Array): void {
    const index: number[] = [];
    const count: number[] = [];
    counts.forEach((v, i) => {
      if (v !== 0) {
        index.push(i);
        count.push(v);
      }
    });
    this.cells.push({ index: Int32Array.from(index), count: Float64Array.from(count) });
  }

  /** The matrix of image `i`. */
  image(i: number): ConfusionMatrix {
    const m = new ConfusionMatrix(this.numClasses, { ignoreIndex: this.ignoreIndex });
    const { index, count } = this.cells[i];
    index.forEach((j, n) => (m.counts[j] = count[n]));
    return m;
  }

  /** The sum over images: the split's confusion matrix. */
  total(): ConfusionMatrix {
    const m = new ConfusionMatrix(this.numClasses, { ignoreIndex: this.ignoreIndex });
    for (const { index, count } of this.cells) index.forEach((j, n) => (m.counts[j] += count[n]));
    return m;
  }

  /** Adds `weight[i]` times image i's counts into `into` (length K * K). */
  weightedSum(weight: ArrayLike<number>, into: Float64Array): Float64Array {
    into.fill(0);
    for (let i = 0; i < this.cells.length; i++) {
      const w = weight[i];
      if (w === 0) continue;
      const { index, count } = this.cells[i];
      for (let n = 0; n < index.length; n++) into[index[n]] += w * count[n];
    }
    return into;
  }

  toJSON(): PerImageConfusionJSON {
    return {
      format: 'dropclass-per-image-confusion/1',
      numClasses: this.numClasses,
      ignoreIndex: this.ignoreIndex,
      images: this.cells.map(({ index, count }) => Array.from(index).flatMap((j, n) => [j, count[n]])),
    };
  }

  static fromJSON(json: PerImageConfusionJSON): PerImageConfusion {
    if (json?.format !== 'dropclass-per-image-confusion/1' || !Array.isArray(json.images)) {
      throw new Error(`not a dropclass-per-image-confusion/1 object (format ${JSON.stringify(json?.format)}); re-evaluate the run to write per-image matrices`);
    }
    const out = new PerImageConfusion(json.numClasses, json.ignoreIndex);
    for (const flat of json.images) {
      const index = new Int32Array(flat.length / 2);
      const count = new Float64Array(flat.length / 2);
      for (let n = 0; n < index.length; n++) {
        index[n] = flat[2 * n];
        count[n] = flat[2 * n + 1];
      }
      out.cells.push({ index, count });
    }
    return out;
  }
}

/** A value with its bootstrap confidence interval; `std` is the sample standard deviation over seeds (NaN for one seed). */
export interface Interval {
  estimate: number;
  lower: number;
  upper: number;
  std: number;
}

/** A difference B - A with its paired interval; `significant` when the interval excludes 0. */
export interface PairedInterval extends Interval {
  a: number;
  b: number;
  significant: boolean;
}

export interface IouIntervals<T extends Interval = Interval> {
  perClass: T[];
  mIoU: T;
  groups: Record<ClassGroup, T>;
}

export interface BootstrapOptions {
  /** Group of each class (frequent / under-represented), for the group means. */
  groups: ClassGroup[];
  /** Resamples. Default 1000. */
  resamples?: number;
  /** Seed of the resampling. Default 0. */
  seed?: number;
  /** Coverage of the interval. Default 0.95. */
  confidence?: number;
}

/** mulberry32: a small seeded generator, enough to draw resampling indices reproducibly. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Per-class IoU, then mIoU and the mean of each group: `[iou_0..iou_K-1, mIoU, frequent, under-represented]`. */
function iouStatistic(counts: Float64Array, k: number, groups: ClassGroup[]): number[] {
  const iou: number[] = [];
  for (let c = 0; c < k; c++) {
    let row = 0;
    let col = 0;
    for (let j = 0; j < k; j++) {
      row += counts[c * k + j];
      col += counts[j * k + c];
    }
    const tp = counts[c * k + c];
    iou.push(row + col - tp > 0 ? tp / (row + col - tp) : Number.NaN);
  }
  const group = (g: ClassGroup) => nanMean(iou.filter((_, c) => groups[c] === g));
  return [...iou, nanMean(iou), group('frequent'), group('under-represented')];
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return Number.NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

const sampleStd = (xs: number[]) => {
  const d = xs.filter((x) => !Number.isNaN(x));
  if (d.length < 2) return Number.NaN;
  const m = nanMean(d);
  return Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / (d.length - 1));
};

function checkRuns(sets: PerImageConfusion[][], groups: ClassGroup[]): { k: number; n: number } {
  const all = sets.flat();
  if (!all.length) throw new RangeError('the bootstrap needs at least one run');
  const { numClasses: k, length: n } = all[0];
  for (const r of all) {
    if (r.numClasses !== k || r.length !== n) {
      throw new RangeError(`every run must be evaluated on the same ${n} images of ${k} classes, got one with ${r.length} images of ${r.numClasses} classes`);
    }
  }
  if (n < 1) throw new RangeError('the bootstrap needs at least one evaluated image');
  if (groups.length !== k) throw new RangeError(`${k} classes need ${k} groups, got ${groups.length}`);
  if (sets.length === 2 && sets[0].length !== sets[1].length) throw new RangeError(`paired runs must come in pairs (one per seed), got ${sets[0].length} and ${sets[1].length}`);
  return { k, n };
}

/**
 * The bootstrap behind both intervals: each resample draws the images with replacement (the same
 * images for every run) and, with several seeds, the seeds with replacement (the same seeds for
 * both models); the statistic is the mean over the drawn seeds. The estimate is the mean over seeds
 * of each seed's value on all images; the interval is the percentile interval.
 */
function bootstrap(sets: PerImageConfusion[][], options: BootstrapOptions, combine: (perSet: number[][]) => number[]) {
  const { k, n } = checkRuns(sets, options.groups);
  const seeds = sets[0].length;
  const resamples = options.resamples ?? 1000;
  const alpha = 1 - (options.confidence ?? 0.95);
  const random = generator(options.seed ?? 0);
  const counts = new Float64Array(k * k);
  const statOf = (run: PerImageConfusion, weight: ArrayLike<number>) => iouStatistic(run.weightedSum(weight, counts), k, options.groups);
  const ones = new Float64Array(n).fill(1);
  const perSeed = sets.map((runs) => runs.map((r) => statOf(r, ones)));
  const meanOver = (rows: number[][]) => rows[0].map((_, j) => nanMean(rows.map((r) => r[j])));
  const estimate = combine(sets.map((_, s) => meanOver(perSeed[s])));
  const perSeedCombined = perSeed[0].map((_, seed) => combine(perSeed.map((rows) => rows[seed])));
  const draws: number[][] = [];
  const weight = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    weight.fill(0);
    for (let i = 0; i < n; i++) weight[Math.floor(random() * n)]++;
    const drawnSeeds = seeds === 1 ? [0] : Array.from({ length: seeds }, () => Math.floor(random() * seeds));
    draws.push(combine(sets.map((runs) => meanOver(drawnSeeds.map((s) => statOf(runs[s], weight))))));
  }
  return estimate.map((value, j) => {
    const sorted = draws.map((d) => d[j]).filter((v) => !Number.isNaN(v)).sort((x, y) => x - y);
    return { estimate: value, lower: quantile(sorted, alpha / 2), upper: quantile(sorted, 1 - alpha / 2), std: sampleStd(perSeedCombined.map((row) => row[j])) };
  });
}

function shape<T extends Interval>(values: T[], k: number): IouIntervals<T> {
  return { perClass: values.slice(0, k), mIoU: values[k], groups: { frequent: values[k + 1], 'under-represented': values[k + 2] } };
}

/**
 * Per-class IoU, mIoU and group means of a model (one run per seed, all on the same images) with a
 * bootstrap confidence interval over images (and seeds, when there are several).
 */
export function bootstrapIoU(runs: PerImageConfusion[], options: BootstrapOptions): IouIntervals {
  const k = runs[0]?.numClasses ?? 0;
  return shape(bootstrap([runs], options, ([v]) => v), k);
}

/**
 * The paired bootstrap of B - A (e.g. DropClass minus baseline): both models are scored on the same
 * resampled images (and the same resampled seeds), so what the images have in common cancels.
 * A difference is `significant` when its interval excludes 0.
 */
export function pairedBootstrapIoU(a: PerImageConfusion[], b: PerImageConfusion[], options: BootstrapOptions): IouIntervals<PairedInterval> {
  const k = a[0]?.numClasses ?? 0;
  const values = bootstrap([a, b], options, ([va, vb]) => [...va.map((x, j) => vb[j] - x), ...va, ...vb]);
  const m = k + 3;
  const paired = values.slice(0, m).map((d, j) => ({
    ...d,
    a: values[m + j].estimate,
    b: values[2 * m + j].estimate,
    significant: d.lower > 0 || d.upper < 0,
  }));
  return shape(paired, k);
}
