// How an image of any size is brought to the model: the export's size rule (pad bottom-right to a
// multiple, at least a minimum, crop back), and what happens above the single-pass limit
// (downscale, or windows at full size). Pure functions: the worker runs them, Node tests them.

import { paddedInputSize } from '@dropclass/core';

/** The size rule of an export's metadata (`input.sizeMultiple`, `input.minSize`). */
export interface SizeRule {
  sizeMultiple: number;
  minSize: number;
}

/** Images whose padded model input has at most this many pixels are predicted in one pass (1024x1024). */
export const SINGLE_PASS_LIMIT = 1024 * 1024;
/** The page decodes images of at most this many pixels (8000x5000): past it, the image, mask and overlay alone take 480 MB. */
export const DECODE_LIMIT = 40_000_000;
/** Side of the windows of `window` mode, before rounding up to the size rule. */
export const WINDOW = 512;
/**
 * Pixels at the inner edges of a window that are not kept: each pixel is taken from a window in which
 * it lies at least this far from any edge that is not an edge of the image, so that the window's
 * border does not reach it. The bundled U-Net's class at a pixel depends on the pixels up to 54
 * away, so its windows give the one-pass classes; a model that pools over the whole image
 * (DeepLabV3's image pooling) sees only the window.
 */
export const WINDOW_MARGIN = 64;

/** What the page does with an image over the single-pass limit. */
export type LargeImageMode = 'downscale' | 'window';

/** The smallest size >= `size` that the model takes: the next multiple of sizeMultiple, at least minSize (core's rule). */
export function paddedSize(size: number, rule: SizeRule): number {
  return paddedInputSize(size, { inputSizeMultiple: rule.sizeMultiple, minInputSize: rule.minSize });
}

/** One window: where it starts in the image, its size (what the model is given) and the part of it kept. */
export interface Tile {
  /** Top-left of the window in the image. */
  x: number;
  y: number;
  /** The model input (the window; where it passes the image's end, zero padding after normalisation). */
  inputWidth: number;
  inputHeight: number;
  /** The part of the window whose classes are kept, in image coordinates: [x0, x1) x [y0, y1). */
  keep: { x0: number; x1: number; y0: number; y1: number };
}

export type Plan =
  | { kind: 'whole'; width: number; height: number; inputWidth: number; inputHeight: number }
  | {
      kind: 'downscale';
      width: number;
      height: number;
      /** The image is resized to this before the size rule, and its class map resized back (nearest). */
      scaledWidth: number;
      scaledHeight: number;
      inputWidth: number;
      inputHeight: number;
    }
  | { kind: 'window'; width: number; height: number; window: number; margin: number; tiles: Tile[] };

export interface PlanOptions {
  mode: LargeImageMode;
  /** Single-pass limit in padded input pixels; default {@link SINGLE_PASS_LIMIT}. */
  limit?: number;
  /** Window side; default {@link WINDOW}, rounded up to the size rule. */
  window?: number;
  /** Default {@link WINDOW_MARGIN}. */
  margin?: number;
}

/** Window starts along one side and the part of each that is kept (see {@link planInference}). */
export function axisTiles(size: number, window: number, margin: number, rule: SizeRule): { start: number; length: number; keep0: number; keep1: number }[] {
  const padded = paddedSize(size, rule);
  if (padded <= window) return [{ start: 0, length: padded, keep0: 0, keep1: size }];
  const m = rule.sizeMultiple;
  // Starts on the size multiple keep the network's pooling grid where the whole image has it.
  const step = Math.max(m, Math.floor((window - 2 * margin) / m) * m);
  const starts: number[] = [];
  for (let s = 0; s + window < padded; s += step) starts.push(s);
  // The last window ends where the whole image's padded input ends, so it sees the same border.
  const last = padded - window;
  if (starts[starts.length - 1] !== last) starts.push(last);
  return starts.map((start, i) => {
    const keep0 = i === 0 ? 0 : Math.floor((start + starts[i - 1] + window) / 2);
    const keep1 = i === starts.length - 1 ? size : Math.floor((starts[i + 1] + start + window) / 2);
    return { start, length: window, keep0, keep1 };
  });
}

/**
 * How to predict an image of `width` x `height`: in one pass when its padded input is within the
 * limit; above it, downscaled (aspect kept) until the padded input is within the limit, or in
 * windows of `window` pixels (on the size multiple, overlapping by at least twice the margin) at
 * full size.
 */
export function planInference(width: number, height: number, rule: SizeRule, options: PlanOptions): Plan {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`image size must be positive whole pixels, got ${width}x${height}`);
  }
  const limit = options.limit ?? SINGLE_PASS_LIMIT;
  const inputWidth = paddedSize(width, rule);
  const inputHeight = paddedSize(height, rule);
  if (inputWidth * inputHeight <= limit) return { kind: 'whole', width, height, inputWidth, inputHeight };
  if (options.mode === 'downscale') {
    if (rule.minSize * rule.minSize > limit) throw new Error(`the single-pass limit ${limit} is below the model's smallest input ${rule.minSize}x${rule.minSize}`);
    let scale = Math.sqrt(limit / (width * height));
    for (;;) {
      const scaledWidth = Math.max(1, Math.floor(width * scale));
      const scaledHeight = Math.max(1, Math.floor(height * scale));
      const w = paddedSize(scaledWidth, rule);
      const h = paddedSize(scaledHeight, rule);
      if (w * h <= limit) return { kind: 'downscale', width, height, scaledWidth, scaledHeight, inputWidth: w, inputHeight: h };
      scale *= 0.99;
    }
  }
  const window = paddedSize(options.window ?? WINDOW, rule);
  const margin = options.margin ?? WINDOW_MARGIN;
  if (window - 2 * margin < rule.sizeMultiple) {
    throw new Error(`a window of ${window} pixels keeps nothing with a margin of ${margin} on each side: give a window of at least ${2 * margin + rule.sizeMultiple}`);
  }
  const xs = axisTiles(width, window, margin, rule);
  const ys = axisTiles(height, window, margin, rule);
  const tiles = ys.flatMap((y) =>
    xs.map((x) => ({ x: x.start, y: y.start, inputWidth: x.length, inputHeight: y.length, keep: { x0: x.keep0, x1: x.keep1, y0: y.keep0, y1: y.keep1 } })),
  );
  return { kind: 'window', width, height, window, margin, tiles };
}

/** A class map of `fromWidth` x `fromHeight` resized to `width` x `height` by nearest neighbour (pixel centres). */
export function resizeNearest(classes: Uint16Array, fromWidth: number, fromHeight: number, width: number, height: number): Uint16Array {
  const out = new Uint16Array(width * height);
  const columns = new Int32Array(width);
  for (let x = 0; x < width; x++) columns[x] = Math.min(fromWidth - 1, Math.floor(((x + 0.5) * fromWidth) / width));
  for (let y = 0; y < height; y++) {
    const row = Math.min(fromHeight - 1, Math.floor(((y + 0.5) * fromHeight) / height)) * fromWidth;
    const at = y * width;
    for (let x = 0; x < width; x++) out[at + x] = classes[row + columns[x]];
  }
  return out;
}

/** A class's share of the image for the legend: '' when absent, '<0.1%' when present below 0.1%, '>99.9%' short of all. */
export function formatShare(count: number, total: number): string {
  if (count <= 0) return '';
  const share = (100 * count) / total;
  if (share < 0.1) return '<0.1%';
  const text = share.toFixed(1);
  return text === '100.0' && count < total ? '>99.9%' : `${text}%`;
}
