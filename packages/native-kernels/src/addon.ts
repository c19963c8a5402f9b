import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The compiled kernels: tensors are a Float32Array over their memory and offsets into it, in floats. */
export interface NativeAddon {
  /** Whether this CPU runs the instructions the build uses. */
  readonly supported: boolean;
  /** The instruction set the products run on: `avx512f+fma` where the CPU has AVX-512 (unless `DROPCLASS_NATIVE_ISA=avx2`), else `avx2+fma`; `generic` off x86-64. */
  readonly isa: string;
  conv2d(heap: Float32Array, x: number, filter: number, bias: number, out: number, relu: number, ...geometry: number[]): void;
  conv2dInputGradient(heap: Float32Array, dy: number, filter: number, dx: number, ...geometry: number[]): void;
  conv2dFilterGradient(heap: Float32Array, x: number, dy: number, dfilter: number, ...geometry: number[]): void;
  matMul(heap: Float32Array, a: number, b: number, out: number, batch: number, m: number, n: number, k: number, aBatchStride: number, bBatchStride: number, transposeA: number, transposeB: number): void;
  batchNorm(heap: Float32Array, x: number, mean: number, variance: number, offset: number, scale: number, out: number, rows: number, channels: number, epsilon: number): void;
  /** Batch norm in training over `[rows, channels]`: `y` (ReLU'd when `relu` is 1), the batch's `mean` and biased `variance`. */
  batchNormTraining(heap: Float32Array, x: number, gamma: number, beta: number, y: number, mean: number, variance: number, rows: number, channels: number, epsilon: number, relu: number): void;
  /** Its gradient through the batch statistics; `y` (or -1) masks dy after a ReLU. */
  batchNormTrainingGradient(heap: Float32Array, x: number, dy: number, gamma: number, mean: number, variance: number, y: number, dx: number, dgamma: number, dbeta: number, rows: number, channels: number, epsilon: number): void;
  /** Over a `[rows, columns]` matrix: `op` 0 sum and 1 mean of each column, 2 max and 3 softmax of each row. */
  rows(heap: Float32Array, x: number, out: number, rows: number, columns: number, op: RowOp): void;
  copyRows(heap: Float32Array, src: number, srcStride: number, dst: number, dstStride: number, rows: number, width: number): void;
  /** `out[r, c] = x[r, c] + v[c]` over a `[rows, columns]` matrix. */
  addRowVector(heap: Float32Array, x: number, v: number, out: number, rows: number, columns: number): void;
  maxPool(heap: Float32Array, x: number, out: number, ...geometry: number[]): void;
  maxPoolGradient(heap: Float32Array, x: number, dy: number, dx: number, ...geometry: number[]): void;
  /** Bilinear resizing (half-pixel centres) of `from` `[batch, inH, inW, channels]` into `to` `[batch, outH, outW, channels]`; with `gradient` 1, its gradient from `from` (output-shaped) into `to` (input-shaped). */
  resizeBilinear(heap: Float32Array, from: number, to: number, batch: number, inH: number, inW: number, channels: number, outH: number, outW: number, gradient: number): void;
  /** Softmax of `[rows, classes]` logits into `p`, `losses` `[2]` (cross-entropy, suppression term) and `count` `[1]` (pixels counted). */
  softmaxLosses(heap: Float32Array, logits: number, labels: number, losses: number, p: number, count: number, rows: number, classes: number, ignoreIndex: number, excludedClass: number, suppressedClass: number): void;
  /** The logits' gradient from `p`, the labels, the forward's `count` and `dy` `[2]`. */
  softmaxLossesGradient(heap: Float32Array, p: number, labels: number, count: number, dy: number, dx: number, rows: number, classes: number, ignoreIndex: number, excludedClass: number, suppressedClass: number): void;
  /** One SGD step over `size` values into `wOut` and `vOut` (`v` -1 on the first step), as core's `SGD_UPDATE_KERNEL`. */
  sgdUpdate(heap: Float32Array, w: number, g: number, v: number, wOut: number, vOut: number, size: number, learningRate: number, momentum: number, weightDecay: number): void;
  setThreads(threads: number): void;
  threads(): number;
}

/** What `rows` computes: column sums, column means, row maxima, row softmax. */
export enum RowOp {
  Sum = 0,
  Mean = 1,
  Max = 2,
  Softmax = 3,
}

/** The addon, or why it cannot be used here. */
export type AddonStatus = { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string };

/** Where `npm install` builds the addon (node-gyp's output folder). */
export const ADDON_PATH = fileURLToPath(new URL('../build/Release/dropclass_native_kernels.node', import.meta.url));

const REBUILD = 'npm rebuild @dropclass/native-kernels (it needs python3, make and a C++ compiler, and prints why a build fails)';

let status: AddonStatus | undefined;

/** Loads the addon once; never throws. `DROPCLASS_NATIVE=0` turns it off. */
export function loadAddon(): AddonStatus {
  if (status) return status;
  if (process.env.DROPCLASS_NATIVE?.trim() === '0') return (status = { reason: 'turned off by DROPCLASS_NATIVE=0' });
  if (!existsSync(ADDON_PATH)) return (status = { reason: `not built (${ADDON_PATH} is missing): run ${REBUILD}` });
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    if (!addon.supported) return (status = { reason: `this CPU lacks the instructions the build uses (${addon.isa})` });
    return (status = { addon });
  } catch (error) {
    return (status = { reason: `${ADDON_PATH} does not load (${(error as Error).message.split('\n')[0]}): run ${REBUILD}` });
  }
}
