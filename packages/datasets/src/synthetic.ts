import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '@dropclass/core/rng';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { DatasetError } from './errors.js';
import { CLASSES_JSON } from './folder.js';
import type { Rgb } from './types.js';

/** Background "stuff" classes; each rare object class has one of them as its usual context. */
export const SYNTHETIC_CONTEXTS = ['road', 'grass', 'water', 'sand'] as const;
/** Object classes, from the least to the most rare; object i lives mostly on context i. */
export const SYNTHETIC_OBJECTS = ['car', 'cow', 'boat', 'crab'] as const;
export const SYNTHETIC_CLASS_NAMES: string[] = [...SYNTHETIC_CONTEXTS, ...SYNTHETIC_OBJECTS];
export const SYNTHETIC_PALETTE: Rgb[] = [
  [128, 64, 128],
  [107, 142, 35],
  [70, 130, 180],
  [230, 210, 140],
  [0, 0, 142],
  [220, 20, 60],
  [255, 128, 0],
  [119, 11, 32],
];

export type SyntheticSplit = 'train' | 'val' | 'val-shifted';

/**
 * - `longtail`: the benchmark: long-tailed objects, each mostly on its usual context in `train` and
 *   `val`, on other contexts in `val-shifted`;
 * - `pretrain`: a stand-in for a diverse pretraining corpus: every object class equally often, on
 *   every context equally often (no long tail, no context bias); splits `train` and `val`.
 */
export type SyntheticMode = 'longtail' | 'pretrain';

export interface SyntheticOptions {
  root: string;
  /** Default `longtail`. */
  mode?: SyntheticMode;
  seed?: number;
  /** Image height and width. Default 64. */
  size?: number;
  counts?: Partial<Record<SyntheticSplit, number>>;
  /** Fraction of each object's instances on its usual context in `train` and `val`. Default 0.9. */
  bias?: number;
  /** Object size relative to the default drawing. Default 1.5. */
  objectScale?: number;
}

export interface SyntheticStats {
  seed: number;
  size: number;
  classNames: string[];
  /** The options it was generated with (absent in folders written before they were recorded). */
  options?: SyntheticGeneratorOptions;
  /** Per split: images, pixel share of each class, share of each object's instances on its usual context, object instances per class. */
  splits: Partial<Record<SyntheticSplit, { images: number; pixelFrequency: number[]; onHomeContext: Record<string, number>; instances: Record<string, number> }>>;
}

const OBJECT_WEIGHTS = [0.55, 0.15, 0.2, 0.1];
const NO_OBJECT = 0.15;

interface Canvas {
  size: number;
  rgb: Uint8Array;
  label: Uint8Array;
}

function put(c: Canvas, x: number, y: number, color: Rgb, cls: number): void {
  if (x < 0 || y < 0 || x >= c.size || y >= c.size) return;
  const i = y * c.size + x;
  c.rgb.set(color, 3 * i);
  c.label[i] = cls;
}

const jitter = (rng: Rng, color: Rgb, amount: number): Rgb => color.map((v) => Math.max(0, Math.min(255, Math.round(v + (rng.next() - 0.5) * 2 * amount)))) as Rgb;

/** Fills the whole canvas with a context's colour and texture. */
function paintContext(c: Canvas, context: number, rng: Rng): void {
  const phase = rng.next() * Math.PI * 2;
  for (let y = 0; y < c.size; y++) {
    for (let x = 0; x < c.size; x++) {
      let color: Rgb;
      switch (SYNTHETIC_CONTEXTS[context]) {
        case 'road':
          // grey asphalt with sparse white lane dashes
          color = y % 16 === 8 && x % 12 < 6 ? [235, 235, 235] : jitter(rng, [105, 105, 110], 10);
          break;
        case 'grass':
          color = jitter(rng, x % 3 === 0 ? [50, 120, 40] : [70, 150, 55], 10);
          break;
        case 'water': {
          const wave = Math.sin(y * 0.8 + Math.sin(x * 0.3 + phase) * 2) * 25;
          color = jitter(rng, [40, 95 + wave, 175 + wave / 2], 8);
          break;
        }
        default:
          color = jitter(rng, [205, 185, 125], 12);
      }
      put(c, x, y, color, context);
    }
  }
}

function fillEllipse(c: Canvas, cx: number, cy: number, rx: number, ry: number, color: (x: number, y: number) => Rgb, cls: number): void {
  for (let y = Math.floor(cy - ry); y <= Math.ceil(cy + ry); y++) {
    for (let x = Math.floor(cx - rx); x <= Math.ceil(cx + rx); x++) {
      if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) put(c, x, y, color(x, y), cls);
    }
  }
}

function fillRect(c: Canvas, x0: number, y0: number, w: number, h: number, color: Rgb, cls: number): void {
  for (let y = Math.round(y0); y < Math.round(y0 + h); y++) for (let x = Math.round(x0); x < Math.round(x0 + w); x++) put(c, x, y, color, cls);
}

function fillTriangle(c: Canvas, [ax, ay]: number[], [bx, by]: number[], [qx, qy]: number[], color: Rgb, cls: number): void {
  const area = (bx - ax) * (qy - ay) - (qx - ax) * (by - ay);
  for (let y = Math.floor(Math.min(ay, by, qy)); y <= Math.ceil(Math.max(ay, by, qy)); y++) {
    for (let x = Math.floor(Math.min(ax, bx, qx)); x <= Math.ceil(Math.max(ax, bx, qx)); x++) {
      const w0 = ((bx - x) * (qy - y) - (qx - x) * (by - y)) / area;
      const w1 = ((qx - x) * (ay - y) - (ax - x) * (qy - y)) / area;
      if (w0 >= 0 && w1 >= 0 && w0 + w1 <= 1) put(c, x, y, color, cls);
    }
  }
}

/** Draws one object instance; shapes differ, colours overlap with other classes on purpose. */
function paintObject(c: Canvas, object: number, cx: number, cy: number, scale: number, rng: Rng): void {
  const cls = SYNTHETIC_CONTEXTS.length + object;
  switch (SYNTHETIC_OBJECTS[object]) {
    case 'car': {
      const body: Rgb = ([[200, 40, 40], [40, 60, 200], [230, 230, 230]] as Rgb[])[rng.int(3)];
      const w = 14 * scale;
      const h = 7 * scale;
      fillRect(c, cx - w / 2, cy - h / 2, w, h, body, cls);
      fillRect(c, cx - w / 4, cy - h / 2 - 3 * scale, w / 2, 3 * scale, [40, 40, 50], cls);
      fillRect(c, cx - w / 2 + scale, cy + h / 2 - 1, 3 * scale, 2 * scale, [20, 20, 20], cls);
      fillRect(c, cx + w / 2 - 4 * scale, cy + h / 2 - 1, 3 * scale, 2 * scale, [20, 20, 20], cls);
      break;
    }
    case 'cow': {
      const spots = Array.from({ length: 3 }, () => [cx + (rng.next() - 0.5) * 8 * scale, cy + (rng.next() - 0.5) * 4 * scale]);
      fillEllipse(c, cx, cy, 6.5 * scale, 4 * scale, (x, y) => (spots.some(([sx, sy]) => (x - sx) ** 2 + (y - sy) ** 2 < 2.5 * scale * scale) ? [25, 25, 25] : [240, 240, 235]), cls);
      fillEllipse(c, cx + 7 * scale, cy - 2 * scale, 2 * scale, 1.8 * scale, () => [240, 240, 235], cls);
      break;
    }
    case 'boat':
      fillTriangle(c, [cx - 6 * scale, cy], [cx + 6 * scale, cy], [cx + 3 * scale, cy + 3 * scale], [120, 70, 30], cls);
      fillTriangle(c, [cx - 3 * scale, cy + 0.5], [cx, cy - 8 * scale], [cx, cy + 0.5], [245, 245, 240], cls);
      break;
    default: {
      const shell: Rgb = [225, 90, 40];
      for (const side of [-1, 1]) for (let leg = -1; leg <= 1; leg++) fillRect(c, side < 0 ? cx - 5 * scale : cx + scale, cy + leg * 1.5 * scale, 4 * scale, 1, shell, cls);
      fillEllipse(c, cx, cy, 3 * scale, 2.2 * scale, () => shell, cls);
    }
  }
}

function seedFor(seed: number, split: SyntheticSplit, index: number, mode: SyntheticMode): number {
  // The pretraining set draws from other streams than the benchmark's splits of the same seed.
  const splitCode = (split === 'train' ? 1 : split === 'val' ? 2 : 3) + (mode === 'pretrain' ? 3 : 0);
  return (Math.imul(seed + 1, 2654435761) ^ Math.imul(splitCode, 40503) ^ Math.imul(index + 1, 97)) >>> 0;
}

function pickWeighted(rng: Rng, weights: number[]): number {
  let u = rng.next() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/** Half width and half height of each object's drawing, in units of its scale (a bounding box around the centre). */
const OBJECT_EXTENT: [number, number][] = [
  [7.5, 7],
  [9.5, 4.5],
  [6.5, 8.5],
  [5.5, 2.8],
];

/** What one sample holds: its context, its object class (-1: none) and where each instance is drawn. */
export interface SyntheticLayout {
  context: number;
  object: number;
  placements: { cx: number; cy: number; scale: number }[];
}

/**
 * The layout of one sample, drawn from its own random stream (textures come from another), so the
 * instance counts of a split are known without rendering it. A second instance is placed only where
 * its bounding box keeps 2 pixels from the first, so every instance is its own connected object.
 */
export function syntheticLayout(seed: number, split: SyntheticSplit, index: number, size = 64, bias = 0.9, objectScale = 1.5, mode: SyntheticMode = 'longtail'): SyntheticLayout {
  const rng = new Rng(seedFor(seed, split, index, mode));
  const contexts = SYNTHETIC_CONTEXTS.length;
  const hasObject = rng.next() >= NO_OBJECT;
  const pretrain = mode === 'pretrain';
  const object = pretrain ? rng.int(SYNTHETIC_OBJECTS.length) : pickWeighted(rng, OBJECT_WEIGHTS);
  let context: number;
  if (pretrain) context = rng.int(contexts);
  else if (!hasObject) context = pickWeighted(rng, [0.4, 0.3, 0.2, 0.1]);
  else if (split !== 'val-shifted' && rng.next() < bias) context = object;
  else context = (object + 1 + rng.int(contexts - 1)) % contexts;
  const wanted = hasObject ? (rng.next() < 0.3 ? 2 : 1) : 0;
  const base = (size / 64) * objectScale;
  const margin = Math.min(10 * base, size / 3);
  const placements: SyntheticLayout['placements'] = [];
  for (let attempt = 0; placements.length < wanted && attempt < 20; attempt++) {
    const p = { cx: margin + rng.next() * (size - 2 * margin), cy: margin + rng.next() * (size - 2 * margin), scale: base * (0.8 + 0.4 * rng.next()) };
    const [hw, hh] = OBJECT_EXTENT[object];
    const apart = placements.every((q) => Math.abs(p.cx - q.cx) > hw * (p.scale + q.scale) + 3 || Math.abs(p.cy - q.cy) > hh * (p.scale + q.scale) + 3);
    if (apart) placements.push(p);
  }
  return { context, object: hasObject ? object : -1, placements };
}

/** Renders one sample; returns the canvas and the objects it holds with their context. */
export function renderSynthetic(seed: number, split: SyntheticSplit, index: number, size = 64, bias = 0.9, objectScale = 1.5, mode: SyntheticMode = 'longtail') {
  const layout = syntheticLayout(seed, split, index, size, bias, objectScale, mode);
  const rng = new Rng(seedFor(seed, split, index, mode) ^ 0x5bd1e995);
  const canvas: Canvas = { size, rgb: new Uint8Array(size * size * 3), label: new Uint8Array(size * size) };
  paintContext(canvas, layout.context, rng);
  for (const p of layout.placements) paintObject(canvas, layout.object, p.cx, p.cy, p.scale, rng);
  return { canvas, context: layout.context, object: layout.object, instances: layout.placements.length };
}

/** Version of the drawing code, recorded with the options: data drawn by another version is not reused. */
export const SYNTHETIC_GENERATOR_VERSION = 2;

export const SYNTHETIC_DEFAULT_COUNTS: Record<SyntheticSplit, number> = { train: 600, val: 3200, 'val-shifted': 3200 };
/** The pretraining set's splits: four times the benchmark's training images, and a `val` to check what it teaches. */
export const SYNTHETIC_PRETRAIN_COUNTS: Partial<Record<SyntheticSplit, number>> = { train: 2400, val: 800 };

/** Everything that decides the generated files; written to `stats.json` as `options`. */
export interface SyntheticGeneratorOptions {
  version: number;
  /** Absent in folders written before the pretraining mode existed: those are `longtail`. */
  mode?: SyntheticMode;
  seed: number;
  size: number;
  counts: Partial<Record<SyntheticSplit, number>>;
  bias: number;
  objectScale: number;
}

export function resolveSyntheticOptions(options: Omit<SyntheticOptions, 'root'>): SyntheticGeneratorOptions {
  const mode = options.mode ?? 'longtail';
  const counts =
    mode === 'pretrain'
      ? { ...SYNTHETIC_PRETRAIN_COUNTS, ...Object.fromEntries(Object.entries(options.counts ?? {}).filter(([split]) => split !== 'val-shifted')) }
      : { ...SYNTHETIC_DEFAULT_COUNTS, ...options.counts };
  return {
    version: SYNTHETIC_GENERATOR_VERSION,
    // Recorded only for the pretraining mode, so that benchmark folders written before it keep their options.
    ...(mode === 'pretrain' ? { mode } : {}),
    seed: options.seed ?? 0,
    size: options.size ?? 64,
    counts,
    bias: options.bias ?? 0.9,
    objectScale: options.objectScale ?? 1.5,
  };
}

/**
 * Object instances per class and split that `generateSynthetic` would write with these options,
 * from the layouts alone (no drawing): `{ split: { car: n, cow: n, ... } }`.
 */
export function planSynthetic(options: Omit<SyntheticOptions, 'root'> = {}): Partial<Record<SyntheticSplit, Record<string, number>>> {
  const o = resolveSyntheticOptions(options);
  const plan: Partial<Record<SyntheticSplit, Record<string, number>>> = {};
  for (const split of Object.keys(o.counts) as SyntheticSplit[]) {
    const total = new Array<number>(SYNTHETIC_OBJECTS.length).fill(0);
    for (let i = 0; i < o.counts[split]!; i++) {
      const layout = syntheticLayout(o.seed, split, i, o.size, o.bias, o.objectScale, o.mode);
      if (layout.object >= 0) total[layout.object] += layout.placements.length;
    }
    plan[split] = Object.fromEntries(SYNTHETIC_OBJECTS.map((name, k) => [name, total[k]]));
  }
  return plan;
}

/**
 * Writes the synthetic long-tailed, context-biased benchmark as a folder dataset under `root`
 * (`train`, `val`, `val-shifted`), with `classes.json` and `stats.json` (the generator options, and
 * per split the pixel frequencies, the share of objects on their usual context and the instance
 * counts). Same options, same files.
 */
export async function generateSynthetic(options: SyntheticOptions): Promise<SyntheticStats> {
  const o = resolveSyntheticOptions(options);
  const { seed, size, bias, counts } = o;
  const numClasses = SYNTHETIC_CLASS_NAMES.length;
  const stats: SyntheticStats = { seed, size, classNames: SYNTHETIC_CLASS_NAMES, options: o, splits: {} as SyntheticStats['splits'] };
  for (const split of Object.keys(counts) as SyntheticSplit[]) {
    const imageDir = join(options.root, split, 'images');
    const maskDir = join(options.root, split, 'masks');
    await mkdir(imageDir, { recursive: true });
    await mkdir(maskDir, { recursive: true });
    const pixels = new Float64Array(numClasses);
    const onHome = new Array(SYNTHETIC_OBJECTS.length).fill(0);
    const total = new Array(SYNTHETIC_OBJECTS.length).fill(0);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < counts[split]!; i++) {
      const { canvas, context, object, instances } = renderSynthetic(seed, split, i, size, bias, o.objectScale, o.mode);
      for (const v of canvas.label) pixels[v]++;
      if (object >= 0) {
        total[object] += instances;
        if (context === object) onHome[object] += instances;
      }
      const name = `${split}-${String(i).padStart(5, '0')}.png`;
      writes.push(
        sharp(canvas.rgb, { raw: { width: size, height: size, channels: 3 } }).png().toFile(join(imageDir, name)),
        // Masks are written with exact control over the format: 8-bit single channel, values = class ids.
        writeFile(join(maskDir, name), encodePng({ width: size, height: size, data: canvas.label, channels: 1, depth: 8 })),
      );
      if (writes.length >= 64) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    const sum = pixels.reduce((a, b) => a + b, 0);
    stats.splits[split] = {
      images: counts[split]!,
      pixelFrequency: Array.from(pixels, (p) => p / sum),
      onHomeContext: Object.fromEntries(SYNTHETIC_OBJECTS.map((o, k) => [o, total[k] ? onHome[k] / total[k] : Number.NaN])),
      instances: Object.fromEntries(SYNTHETIC_OBJECTS.map((o, k) => [o, total[k]])),
    };
  }
  await writeFile(join(options.root, CLASSES_JSON), JSON.stringify({ names: SYNTHETIC_CLASS_NAMES, palette: SYNTHETIC_PALETTE }, null, 2));
  // stats.json last: a folder that has it holds a complete dataset.
  await writeFile(join(options.root, SYNTHETIC_STATS_JSON), JSON.stringify(stats, null, 2));
  return stats;
}

export const SYNTHETIC_STATS_JSON = 'stats.json';

/**
 * Writes the benchmark to `root` unless a complete one generated with the same options is there.
 * A folder generated with other options (or by an older generator, which recorded none) is never
 * reused: a DatasetError names the options that differ and how to start fresh.
 */
export async function ensureSynthetic(options: SyntheticOptions): Promise<{ stats: SyntheticStats; generated: boolean }> {
  const wanted = resolveSyntheticOptions(options);
  const file = join(options.root, SYNTHETIC_STATS_JSON);
  if (!existsSync(file)) {
    if (existsSync(join(options.root, CLASSES_JSON))) {
      throw new DatasetError(file, 'missing next to classes.json (an interrupted or foreign dataset)', 'a complete synthetic benchmark', `Remove ${options.root} to have it written again, or choose another folder.`);
    }
    return { stats: await generateSynthetic(options), generated: true };
  }
  const stats = JSON.parse(await readFile(file, 'utf8')) as SyntheticStats;
  if (!stats.options) {
    throw new DatasetError(file, 'records no generator options (written by an older version of the generator)', `a synthetic benchmark generated with ${JSON.stringify(wanted)}`, `Remove ${options.root} to have it written again, or give another data folder.`);
  }
  const differing = differingKeys(stats.options, wanted);
  if (differing.length) {
    const found = differing.map((k) => `${k} ${JSON.stringify(pick(stats.options, k))}`).join(', ');
    const expected = differing.map((k) => `${k} ${JSON.stringify(pick(wanted, k))}`).join(', ');
    throw new DatasetError(file, `the synthetic benchmark there was generated with ${found}`, expected, `Remove ${options.root} to have it written again with these options, or give another data folder.`);
  }
  return { stats, generated: false };
}

function pick(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
}

/** Dotted keys whose values differ between two plain JSON objects. */
export function differingKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differingKeys((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(value)'];
}

/** The class-frequency and bias table of a generated dataset, for the terminal and the README. */
export function formatSyntheticStats(stats: SyntheticStats): string {
  const splits = Object.keys(stats.splits) as SyntheticSplit[];
  const header = ['class', 'kind', 'usual context', ...splits.map((s) => `${s} pixels`)];
  const rows = stats.classNames.map((name, c) => {
    const isObject = c >= SYNTHETIC_CONTEXTS.length;
    return [
      name,
      isObject ? 'object' : 'context',
      isObject ? SYNTHETIC_CONTEXTS[c - SYNTHETIC_CONTEXTS.length] : '',
      ...splits.map((s) => `${(100 * stats.splits[s]!.pixelFrequency[c]).toFixed(2)}%`),
    ];
  });
  const bias = SYNTHETIC_OBJECTS.map((o) => [
    `${o} on its usual context`,
    '',
    '',
    // A split too small to hold an instance of the object has no share to give.
    ...splits.map((s) => (stats.splits[s]!.instances[o] ? `${(100 * stats.splits[s]!.onHomeContext[o]).toFixed(0)}% of ${stats.splits[s]!.instances[o]}` : 'no instance')),
  ]);
  const all = [header, ...rows, ...bias];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line), ...bias.map(line)].join('\n');
}
