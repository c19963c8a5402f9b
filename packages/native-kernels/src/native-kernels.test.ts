import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { ADDON_PATH, loadAddon, type NativeAddon, RowOp } from './addon.js';
import {
  BATCH_NORM_TRAINING_GRAD_KERNEL as BATCH_NORM_TRAINING_GRAD,
  BATCH_NORM_TRAINING_KERNEL as BATCH_NORM_TRAINING,
  BilinearUpSampling2D,
  DILATED_CONV2D_FILTER_GRAD_KERNEL as DILATED_CONV2D_FILTER_GRAD,
  dilatedConv2d,
  RESIZE_BILINEAR_GRAD_KERNEL as RESIZE_BILINEAR_GRAD,
  RESIZE_BILINEAR_KERNEL as RESIZE_BILINEAR,
  SOFTMAX_LOSSES_GRAD_KERNEL as SOFTMAX_LOSSES_GRAD,
  SOFTMAX_LOSSES_KERNEL as SOFTMAX_LOSSES,
} from '@dropclass/core';
import { NATIVE_KERNELS, registerOnWasm } from './wasm-kernels.js';

const { addon, reason } = loadAddon();

/** Counts the addon's calls by name, to tell a native run from a fall-back. */
const calls = new Map<string, number>();
function counting(inner: NativeAddon): NativeAddon {
  const wrapped: Record<string, unknown> = { supported: inner.supported, isa: inner.isa, setThreads: inner.setThreads, threads: inner.threads };
  for (const name of ['conv2d', 'conv2dInputGradient', 'conv2dFilterGradient', 'matMul', 'batchNorm', 'rows', 'copyRows', 'addRowVector', 'maxPool', 'maxPoolGradient', 'resizeBilinear', 'batchNormTraining', 'batchNormTrainingGradient', 'softmaxLosses', 'softmaxLossesGradient'] as const) {
    wrapped[name] = (...args: unknown[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return (inner[name] as (...a: unknown[]) => void)(...args);
    };
  }
  return wrapped as unknown as NativeAddon;
}

function uniform(shape: number[], seed: number): Float32Array {
  let s = seed * 7919 + 17;
  return Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  });
}

/** Runs `fn` on a backend and returns its results' values. */
async function on(backend: 'wasm' | 'cpu', fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => fn().map((t) => t.dataSync() as Float32Array));
}

/** Every value within 2e-5 of the largest reference magnitude: float32 sums in another order differ by about that. */
function expectClose(got: Float32Array, want: Float32Array, label: string): void {
  expect(got.length, label).toBe(want.length);
  if (want.length === 0) return;
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expect(scale, label).toBeGreaterThan(0);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst / scale, label).toBeLessThan(2e-5);
}

/** The native results, the cpu backend's, and which addon functions ran. */
async function compare(label: string, fn: () => tf.Tensor[]): Promise<Map<string, number>> {
  calls.clear();
  const native = await on('wasm', fn);
  const ran = new Map(calls);
  const reference = await on('cpu', fn);
  native.forEach((values, i) => expectClose(values, reference[i], `${label}, result ${i}`));
  return ran;
}

describe('the addon', () => {
  it('is built and loads here, or says why not', () => {
    if (addon) {
      expect(addon.supported).toBe(true);
      expect(['avx512f+fma', 'avx2+fma', 'generic']).toContain(addon.isa);
    } else {
      expect(reason).toMatch(/DROPCLASS_NATIVE=0|not built|does not load|lacks/);
    }
  });

  it.runIf(addon)('checks what it is given', () => {
    const heap = new Float32Array(16);
    expect(() => addon!.matMul(heap, 0, 4, 8, 1, 2, 2, 2, 4, 4, 0, 0)).not.toThrow();
    expect(() => addon!.matMul(heap, 0, 4, 14, 1, 2, 2, 2, 4, 4, 0, 0)).toThrow(/outside the memory/);
    expect(() => addon!.matMul(new Float64Array(4) as unknown as Float32Array, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0)).toThrow(/Float32Array/);
    expect(() => addon!.setThreads(0)).toThrow(/threads/);
  });
});

// Convolutions (forward, both gradients) and products of several shapes, computed by the addon in
// a process of its own; prints the instruction set and a digest of every result's bits.
const PRODUCTS = `
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
const addon = createRequire(import.meta.url)(process.argv[1]);
addon.setThreads(2);
let s = 7;
const heap = new Float32Array(1 << 21).map(() => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1);
const out = 1 << 20;
const hash = createHash('sha256');
const keep = (n) => hash.update(new Uint8Array(heap.buffer, out * 4, n * 4));
for (const [m, n, k, ta, tb] of [[300, 19, 256, 0, 0], [97, 130, 600, 1, 0], [64, 512, 288, 0, 1], [5, 8, 9000, 0, 0]]) {
  addon.matMul(heap, 0, 300000, out, 1, m, n, k, 0, 0, ta, tb);
  keep(m * n);
}
// batch, in h w c, out h w c, kernel h w, stride h w, dilation h w, padding top left
for (const g of [[2, 17, 19, 24, 17, 19, 40, 3, 3, 1, 1, 1, 1, 1, 1], [1, 33, 31, 64, 17, 16, 70, 3, 3, 2, 2, 1, 1, 1, 1], [2, 20, 20, 48, 20, 20, 16, 1, 1, 1, 1, 1, 1, 0, 0]]) {
  const outSize = g[0] * g[4] * g[5] * g[6];
  addon.conv2d(heap, 0, 300000, -1, out, 0, ...g);
  keep(outSize);
  addon.conv2dInputGradient(heap, 0, 300000, out, ...g);
  keep(g[0] * g[1] * g[2] * g[3]);
  addon.conv2dFilterGradient(heap, 0, 300000, out, ...g);
  keep(g[7] * g[8] * g[3] * g[6]);
}
process.stdout.write(JSON.stringify({ isa: addon.isa, digest: hash.digest('hex') }));
`;

function productsIn(env: Record<string, string>): { isa: string; digest: string } {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', PRODUCTS, ADDON_PATH], { env: { ...process.env, ...env }, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { isa: string; digest: string };
}

describe.runIf(addon?.isa === 'avx512f+fma')('the AVX-512 build of the product', () => {
  it('gives the same bits as the AVX2 build (DROPCLASS_NATIVE_ISA=avx2): each value summed in the same order', () => {
    const wide = productsIn({});
    const narrow = productsIn({ DROPCLASS_NATIVE_ISA: 'avx2' });
    expect(wide.isa).toBe('avx512f+fma');
    expect(narrow.isa).toBe('avx2+fma');
    expect(wide.digest).toBe(narrow.digest);
  });
});

describe.runIf(addon)('the thread pool', () => {
  it('runs 150,000 short threaded calls in a row, each with the right result (no late worker runs a finished call)', () => {
    addon!.setThreads(2);
    const heap = new Float32Array(2 * 65536 + 600);
    for (let i = 0; i < 65536; i++) heap[i] = i % 251;
    const columnSums = Array.from({ length: 128 }, (_, c) => heap.subarray(0, 65536).filter((_, i) => i % 128 === c).reduce((a, b) => a + b, 0));
    let wrong = 0;
    for (let call = 0; call < 50_000; call++) {
      heap.fill(-1, 65536, 2 * 65536);
      addon!.copyRows(heap, 0, 256, 65536, 256, 256, 256); // 65,536 values: split between the threads
      if (heap[65536 + (call % 65536)] !== call % 65536 % 251) wrong++;
      addon!.rows(heap, 0, 2 * 65536, 512, 128, RowOp.Sum); // 65,536 values: two parts
      if (heap[2 * 65536 + (call % 128)] !== columnSums[call % 128]) wrong++;
      addon!.matMul(heap, 0, 0, 2 * 65536 + 128, 1, 96, 4, 1, 0, 0, 0, 0);
      if (heap[2 * 65536 + 128 + 5] !== heap[1] * heap[1]) wrong++;
    }
    expect(wrong).toBe(0);
  });
});

/** `run`'s results with 1, 2, 3 and 5 threads (then back to 2), checked to be the same bits; by threads. */
function withThreads(run: () => number[][]): Map<number, number[][]> {
  const byThreads = new Map<number, number[][]>();
  for (const threads of [1, 2, 3, 5]) {
    addon!.setThreads(threads);
    byThreads.set(threads, run());
  }
  addon!.setThreads(2);
  for (const threads of [2, 3, 5]) expect(byThreads.get(threads), `${threads} threads`).toEqual(byThreads.get(1));
  return byThreads;
}

describe.runIf(addon)('native kernels on wasm against the cpu backend', () => {
  beforeAll(async () => {
    addon!.setThreads(2);
    expect(registerOnWasm(counting(addon!))).toEqual([...NATIVE_KERNELS.keys()]);
    expect(await tf.setBackend('wasm')).toBe(true);
  });

  type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
  const cases: { x: number[]; k: number[]; out: number; strides: number | [number, number]; pad: Pad; dilation: number }[] = [
    { x: [2, 9, 7, 3], k: [3, 3], out: 5, strides: 1, pad: 'same', dilation: 1 },
    { x: [3, 10, 11, 4], k: [3, 3], out: 17, strides: 2, pad: 'same', dilation: 1 },
    { x: [2, 12, 12, 6], k: [3, 3], out: 9, strides: 1, pad: 'same', dilation: 2 },
    { x: [2, 9, 8, 5], k: [5, 3], out: 16, strides: [2, 1], pad: 'valid', dilation: 1 },
    { x: [1, 7, 9, 2], k: [3, 3], out: 8, strides: 1, pad: [[0, 0], [2, 0], [1, 3], [0, 0]], dilation: 1 },
    { x: [2, 5, 6, 33], k: [1, 1], out: 7, strides: 1, pad: 'same', dilation: 1 },
    { x: [2, 6, 6, 4], k: [1, 1], out: 3, strides: 2, pad: 'valid', dilation: 1 },
    // more rows than one tile of patches, and more than one block of the product's depth
    { x: [2, 16, 16, 32], k: [3, 3], out: 20, strides: 1, pad: 'same', dilation: 1 },
    // fewer tiles of rows than threads, many outputs: columns (forward, input gradient) and the
    // filter gradient's rows parted across the threads
    { x: [1, 5, 6, 40], k: [3, 3], out: 136, strides: 1, pad: 'same', dilation: 1 },
    { x: [1, 3, 4, 64], k: [1, 1], out: 130, strides: 1, pad: 'same', dilation: 1 },
    // stride 1 with few outputs: the input gradient as a convolution of the output gradient, with
    // uneven padding, no padding, and a kernel wider than tall
    { x: [1, 7, 9, 12], k: [3, 3], out: 8, strides: 1, pad: [[0, 0], [2, 0], [1, 3], [0, 0]], dilation: 1 },
    { x: [2, 9, 8, 10], k: [3, 5], out: 4, strides: 1, pad: 'valid', dilation: 1 },
    { x: [2, 16, 16, 48], k: [3, 3], out: 16, strides: 1, pad: 'same', dilation: 1 },
  ];
  for (const c of cases) {
    it(`conv2d x ${c.x.join('x')} k ${c.k.join('x')}x${c.out} strides ${c.strides} pad ${JSON.stringify(c.pad)} dilation ${c.dilation}: forward${c.dilation === 1 ? ' and both gradients' : ''}`, async () => {
      const xv = uniform(c.x, 1);
      const wShape = [...c.k, c.x[3], c.out];
      const wv = uniform(wShape, 2);
      // tfjs has no gradients of dilated convolutions: those run forward only
      const gradients = c.dilation === 1;
      const ran = await compare('conv2d', () => {
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const w = tf.tensor4d(wv, wShape as [number, number, number, number]);
        const f = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.conv2d(a, b, c.strides, c.pad, 'NHWC', c.dilation);
        const y = f(x, w);
        if (!gradients) return [y];
        const weights = tf.sin(tf.reshape(tf.range(0, y.size), y.shape));
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), weights)))([x, w]);
        return [y, dx, dw];
      });
      // the gradients run the forward pass again
      ran.delete('rows'); // the loss's sum
      expect(Object.fromEntries(ran)).toEqual(gradients ? { conv2d: 2, conv2dInputGradient: 1, conv2dFilterGradient: 1 } : { conv2d: 1 });
    });
  }

  it('fused conv2d with bias and ReLU; other activations go to the kernel it replaced', async () => {
    const xv = uniform([2, 8, 8, 6], 3);
    const wv = uniform([3, 3, 6, 10], 4);
    const bv = uniform([10], 5);
    const run = (activation: tf.fused.Activation) => () => {
      const x = tf.tensor4d(xv, [2, 8, 8, 6]);
      const w = tf.tensor4d(wv, [3, 3, 6, 10]);
      return [tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias: tf.tensor1d(bv), activation })];
    };
    expect(Object.fromEntries(await compare('relu', run('relu')))).toEqual({ conv2d: 1 });
    expect(Object.fromEntries(await compare('linear', run('linear')))).toEqual({ conv2d: 1 });
    expect(Object.fromEntries(await compare('relu6', run('relu6')))).toEqual({});
  });

  const products: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
    { a: [13, 29], b: [29, 7], ta: false, tb: false },
    // Rows read where they lie for whole blocks of the inner kernel's rows, and packed for the rest;
    // several panels of columns, the last one partly filled; 33 to 48 columns (their own kernel).
    { a: [100, 40], b: [40, 70], ta: false, tb: false },
    { a: [40, 100], b: [40, 70], ta: true, tb: false },
    { a: [50, 30], b: [30, 45], ta: false, tb: false },
    { a: [300, 70], b: [300, 30], ta: true, tb: false },
    { a: [9, 33], b: [40, 33], ta: false, tb: true },
    { a: [33, 9], b: [40, 33], ta: true, tb: true },
    { a: [5000, 8], b: [5000, 64], ta: true, tb: false },
    { a: [3, 4, 20, 5], b: [3, 4, 5, 19], ta: false, tb: false },
    { a: [1, 20, 5], b: [6, 5, 19], ta: false, tb: false },
    { a: [6, 5, 20], b: [5, 19], ta: true, tb: false },
  ];
  for (const p of products) {
    it(`matMul ${p.a.join('x')}${p.ta ? 'ᵀ' : ''} by ${p.b.join('x')}${p.tb ? 'ᵀ' : ''}`, async () => {
      const [av, bv] = [uniform(p.a, 6), uniform(p.b, 7)];
      const ran = await compare('matMul', () => [tf.matMul(tf.tensor(av, p.a), tf.tensor(bv, p.b), p.ta, p.tb)]);
      expect(Object.fromEntries(ran)).toEqual({ matMul: 1 });
    });
  }

  it('leaves other batch broadcasts to the kernel it replaced', async () => {
    const ran = await compare('broadcast', () => [tf.matMul(tf.tensor(uniform([2, 1, 3, 4], 8), [2, 1, 3, 4]), tf.tensor(uniform([1, 3, 4, 2], 9), [1, 3, 4, 2]))]);
    expect(Object.fromEntries(ran)).toEqual({});
  });

  it('batch norm with and without offset and scale, rank 4 and 2', async () => {
    const x = uniform([2, 5, 6, 7], 12);
    const [m, v, o, g] = [uniform([7], 13), uniform([7], 14).map((e) => e + 1.5), uniform([7], 15), uniform([7], 16)];
    const ran = await compare('batch norm', () => [
      tf.batchNorm(tf.tensor4d(x, [2, 5, 6, 7]), tf.tensor1d(m), tf.tensor1d(v), tf.tensor1d(o), tf.tensor1d(g), 1e-3),
      tf.batchNorm(tf.tensor4d(x, [2, 5, 6, 7]), tf.tensor1d(m), tf.tensor1d(v)),
      tf.batchNorm(tf.tensor2d(x, [60, 7]), tf.tensor1d(m), tf.tensor1d(v), undefined, tf.tensor1d(g), 1e-5),
    ]);
    expect(Object.fromEntries(ran)).toEqual({ batchNorm: 3 });
  });

  it('sum and mean over leading axes; other axes go to the kernel it replaced; NaN stays NaN', async () => {
    const v = uniform([40, 30, 6], 17);
    const ran = await compare('reductions', () => {
      const x = tf.tensor3d(v, [40, 30, 6]);
      return [tf.sum(x, [0, 1]), tf.mean(x, 0, true), tf.sum(x), tf.mean(x, [1, 0])];
    });
    expect(Object.fromEntries(ran)).toEqual({ rows: 4 });
    const other = await compare('last axis', () => [tf.sum(tf.tensor3d(v, [40, 30, 6]), 2)]);
    expect(Object.fromEntries(other)).toEqual({});
    await tf.setBackend('wasm');
    const withNaN = tf.tidy(() => tf.sum(tf.tensor2d([1, 2, Number.NaN, 4], [2, 2]), 0).arraySync());
    expect(withNaN).toEqual([Number.NaN, 6]);
  });

  it('a vector added along the last axis, either way round, bit for bit; other sums go to the kernel it replaced', async () => {
    const m = uniform([300, 17], 21);
    const v = uniform([17], 22);
    const sums = async (backend: 'wasm' | 'cpu') =>
      on(backend, () => {
        const matrix = tf.tensor2d(m, [300, 17]);
        const vector = tf.tensor1d(v);
        return [tf.add(matrix, vector), tf.add(vector, matrix), tf.add(tf.reshape(matrix, [3, 10, 10, 17]), tf.reshape(vector, [1, 1, 17]))];
      });
    calls.clear();
    const native = await sums('wasm');
    expect(Object.fromEntries(calls)).toEqual({ addRowVector: 3 });
    expect(native.map((values) => Array.from(values))).toEqual((await sums('cpu')).map((values) => Array.from(values)));
    // same shapes, a column vector, a scalar, a broadcast of both sides: wasm's own kernel
    const others = await compare('other sums', () => {
      const matrix = tf.tensor2d(m, [300, 17]);
      return [tf.add(matrix, matrix), tf.add(matrix, tf.ones([300, 1])), tf.add(matrix, 2), tf.add(tf.reshape(matrix, [300, 1, 17]), tf.ones([1, 4, 17]))];
    });
    expect(Object.fromEntries(others)).toEqual({});
  });

  it('max over the last axis and softmax along it; other axes go to the kernel it replaced; NaN stays NaN', async () => {
    const v = uniform([3, 5, 7, 9], 22).map((e) => e * 30);
    const ran = await compare('row-wise', () => {
      const x = tf.tensor4d(v, [3, 5, 7, 9]);
      return [tf.max(x, -1), tf.max(x, 3, true), tf.softmax(x), tf.softmax(tf.tensor2d(v.slice(0, 40), [8, 5]))];
    });
    expect(Object.fromEntries(ran)).toEqual({ rows: 4 });
    const other = await compare('other axes', () => [tf.max(tf.tensor4d(v, [3, 5, 7, 9]), 1)]);
    expect(Object.fromEntries(other)).toEqual({});
    await tf.setBackend('wasm');
    expect(tf.tidy(() => tf.max(tf.tensor2d([1, Number.NaN, 3, 2, 5, 4], [2, 3]), 1).arraySync())).toEqual([Number.NaN, 5]);
    // A NaN anywhere in a row of 8 or more (the vector path) or fewer makes the row's softmax NaN.
    const rows = [[1, Number.NaN, 3, 2, 5, 4, 0, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8, Number.NaN], [Number.NaN, 1, 2, 0, 0, 0, 0, 0, 0]];
    for (const row of rows) expect(tf.tidy(() => tf.softmax(tf.tensor2d(row, [1, 9])).dataSync()).every(Number.isNaN), JSON.stringify(row)).toBe(true);
    expect(tf.tidy(() => tf.softmax(tf.tensor2d([Number.NaN, 1, 2], [1, 3])).dataSync()).every(Number.isNaN)).toBe(true);
  });

  it('concat and split on any axis, with an empty part', async () => {
    const [a, b, c] = [uniform([2, 3, 4, 5], 18), uniform([2, 3, 4, 2], 19), uniform([2, 3, 4, 7], 20)];
    const ran = await compare('concat and split', () => {
      const ta = tf.tensor4d(a, [2, 3, 4, 5]);
      const tb = tf.tensor4d(b, [2, 3, 4, 2]);
      const tc = tf.tensor4d(c, [2, 3, 4, 7]);
      const joined = tf.concat([ta, tf.zeros([2, 3, 4, 0]), tb, tc], 3);
      const rows = tf.concat([ta, ta], 1);
      return [joined, rows, tf.concat([tf.tensor1d(a.slice(0, 3)), tf.tensor1d(b.slice(0, 4))]), ...tf.split(joined, [4, 0, -1, 3], 3), ...tf.split(rows, 2, 1), ...tf.split(rows, [1, 1], 0)];
    });
    expect(ran.get('copyRows')).toBeGreaterThan(10);
  });

  it('slices along any axes: the channels (a concatenation\'s gradient), a crop, the batch, everything, nothing', async () => {
    const values = uniform([2, 5, 6, 7], 22);
    const ran = await compare('slice', () => {
      const x = tf.tensor4d(values, [2, 5, 6, 7]);
      return [
        tf.slice(x, [0, 0, 0, 2], [-1, -1, -1, 3]),
        tf.slice(x, [0, 1, 2, 0], [2, 3, 3, 7]),
        tf.slice(x, [1, 0, 0, 0], [1, -1, -1, -1]),
        tf.slice(x, [1, 2, 1, 4], [1, 2, 4, 2]),
        tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, -1]),
        tf.slice(x, [0, 0, 0, 0], [2, 0, 6, 7]),
        tf.slice(tf.tensor1d(values.slice(0, 9)), [3], [4]),
      ];
    });
    expect(ran.get('copyRows')).toBeGreaterThan(5);
  });

  for (const [shape, block, edges] of [
    [[2, 5, 7, 3], [2, 2], [[0, 1], [0, 1]]],
    [[1, 6, 4, 2], [3, 2], [[2, 1], [1, 1]]],
    [[2, 4, 4, 5], [18, 18], [[0, 14], [0, 14]]],
  ] as [number[], [number, number], [[number, number], [number, number]]][]) {
    it(`space to batch and back, ${shape.join('x')} block ${block.join('x')} edges ${JSON.stringify(edges)}, and the gradients through them`, async () => {
      const values = uniform(shape, 21);
      const ran = await compare('space to batch', () => {
        const x = tf.tensor4d(values, shape as [number, number, number, number]);
        const blocks = tf.spaceToBatchND(x, block, edges);
        const back = tf.batchToSpaceND(blocks, block, edges);
        const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.spaceToBatchND(t as tf.Tensor4D, block, edges), tf.reshape(tf.range(1, tf.util.sizeFromShape(blocks.shape) + 1), blocks.shape))))(x);
        return [blocks, back, grad];
      });
      expect(ran.get('copyRows')).toBeGreaterThan(0);
    });
  }

  for (const [filter, strides, pad] of [[2, 2, 'valid'], [3, 2, 'same'], [3, 1, 'same'], [2, 2, 'same']] as [number, number, 'same' | 'valid'][]) {
    it(`max pooling gradient, window ${filter} strides ${strides} pad ${pad}, ties to the first maximum`, async () => {
      // Small integers: many ties, where the gradient must go to the first maximum as on cpu.
      const x = uniform([2, 7, 9, 5], 21).map((e) => Math.round(e * 2));
      const ran = await compare('max pool', () => {
        const input = tf.tensor4d(x, [2, 7, 9, 5]);
        const pooled = tf.maxPool(input, filter, strides, pad);
        const weights = tf.reshape(tf.range(1, 1 + pooled.size), pooled.shape);
        return [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, filter, strides, pad), weights)))(input)];
      });
      expect(ran.get('maxPoolGradient')).toBe(1);
    });
    it(`max pooling, window ${filter} strides ${strides} pad ${pad}: the largest value, bit for bit, NaN never`, async () => {
      const x = uniform([2, 7, 9, 5], 23).map((e, i) => (i % 37 === 5 ? Number.NaN : e));
      const pool = async (backend: 'wasm' | 'cpu') => on(backend, () => [tf.maxPool(tf.tensor4d(x, [2, 7, 9, 5]), filter, strides, pad)]);
      calls.clear();
      const [native] = await pool('wasm');
      expect(calls.get('maxPool')).toBe(1);
      const [reference] = await pool('cpu');
      expect(Array.from(native)).toEqual(Array.from(reference));
      expect(native.some(Number.isNaN)).toBe(false);
    });
  }

  // A dilated conv and its gradients by the native kernels (dilated, the gradients by core's dilated
  // gradient kernels) against space-to-batch on cpu, on maps that are not multiples of the rate.
  for (const [rate, shape] of [[2, [2, 9, 11, 6]], [6, [1, 13, 10, 5]]] as [number, number[]][]) {
    it(`dilated conv, rate ${rate}, on ${shape.join('x')}: forward and both gradients as space-to-batch computes them`, async () => {
      const [x, w] = [uniform(shape, 35), uniform([3, 3, shape[3], 7], 36)];
      const weights = uniform([...shape.slice(0, 3), 7], 37);
      const ran = await compare('dilated conv', () => {
        const [input, filter] = [tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor4d(w, [3, 3, shape[3], 7])];
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(dilatedConv2d(a as tf.Tensor4D, b as tf.Tensor4D, rate), tf.tensor(weights, [...shape.slice(0, 3), 7])));
        return [dilatedConv2d(input, filter, rate), ...tf.grads(loss)([input, filter])];
      });
      expect(ran.get('conv2dInputGradient')).toBe(1);
      expect(ran.get('conv2dFilterGradient')).toBe(1);
      expect(ran.get('copyRows')).toBeUndefined(); // no space-to-batch
    });
  }

  // Bilinear resizing with half-pixel centres against its formula, summed here in double: each output
  // the taps' weighted sum (weights 1 - f and f at src = (o + 0.5) in / out - 0.5, clamped), and the
  // gradient each output's dy spread back on the taps that made it.
  function bilinearTaps(inSize: number, outSize: number): [number, number][][] {
    return Array.from({ length: outSize }, (_, o) => {
      const src = Math.max(((o + 0.5) * inSize) / outSize - 0.5, 0);
      const i0 = Math.min(Math.floor(src), inSize - 1);
      return [[i0, 1 - (src - i0)], [Math.min(i0 + 1, inSize - 1), src - i0]] as [number, number][];
    });
  }
  function bilinearByFormula([b, h, w, c]: number[], height: number, width: number, values: Float32Array, gradient: boolean): Float32Array {
    const [rows, columns] = [bilinearTaps(h, height), bilinearTaps(w, width)];
    const out = new Float64Array(b * (gradient ? h * w : height * width) * c);
    for (let n = 0; n < b; n++)
      for (let oy = 0; oy < height; oy++)
        for (let ox = 0; ox < width; ox++)
          for (const [iy, wy] of rows[oy])
            for (const [ix, wx] of columns[ox])
              for (let k = 0; k < c; k++) {
                const small = ((n * h + iy) * w + ix) * c + k;
                const large = ((n * height + oy) * width + ox) * c + k;
                if (gradient) out[small] += wy * wx * values[large];
                else out[large] += wy * wx * values[small];
              }
    return Float32Array.from(out);
  }
  for (const [shape, height, width] of [[[2, 5, 7, 3], 13, 4], [[1, 8, 8, 16], 64, 64], [[2, 16, 12, 19], 32, 24], [[1, 9, 6, 2], 1, 5]] as [number[], number, number][]) {
    it(`bilinear resizing of ${shape.join('x')} to ${height}x${width} and its gradient, against the formula`, async () => {
      const [b, h, w, c] = shape;
      const x = uniform(shape, 31);
      const dy = uniform([b, height, width, c], 32);
      await tf.setBackend('wasm');
      calls.clear();
      const [resized, grad] = tf.tidy(() => [
        tf.engine().runKernel(RESIZE_BILINEAR, { x: tf.tensor4d(x, shape as [number, number, number, number]) }, { height, width }) as tf.Tensor,
        tf.engine().runKernel(RESIZE_BILINEAR_GRAD, { dy: tf.tensor4d(dy, [b, height, width, c]) }, { height: h, width: w }) as tf.Tensor,
      ].map((t) => t.dataSync() as Float32Array));
      expect(calls.get('resizeBilinear')).toBe(2);
      expectClose(resized, bilinearByFormula(shape, height, width, x, false), 'resized');
      expectClose(grad, bilinearByFormula(shape, height, width, dy, true), 'gradient');
    });
  }
  it("a U-Net's bilinear x2 upsampling layer, forward and gradient, as the matrix products on cpu compute it", async () => {
    const x = uniform([2, 6, 5, 4], 33);
    const weights = uniform([2, 12, 10, 4], 34);
    const ran = await compare('upsampling', () => {
      const layer = new BilinearUpSampling2D({ factor: 2 });
      const input = tf.tensor4d(x, [2, 6, 5, 4]);
      const w = tf.tensor4d(weights, [2, 12, 10, 4]);
      return [layer.apply(input) as tf.Tensor, tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t) as tf.Tensor, w)))(input)];
    });
    expect(ran.get('resizeBilinear')).toBe(3);
    expect(ran.get('matMul')).toBeUndefined();
  });

  // Batch norm in training against its definition in tfjs ops on the cpu backend (tf.moments, then
  // normalisation, then the ReLU), forward and the gradient of a weighted sum, through the statistics.
  for (const relu of [false, true]) {
    it(`batch norm in training${relu ? ' with ReLU' : ''}: output, statistics and gradients`, async () => {
      const [rows, channels] = [3000, 7]; // more than one block of rows
      const xv = uniform([rows, channels], 25).map((e, i) => e * (1 + (i % channels)) + 5); // an offset mean
      const [gv, bv] = [uniform([channels], 26), uniform([channels], 27)];
      const weights = uniform([rows, channels], 28);
      const attrs = { epsilon: 1e-5, relu };
      calls.clear();
      await tf.setBackend('wasm');
      const native = tf.tidy(() => {
        const [x, gamma, beta] = [tf.tensor2d(xv, [rows, channels]), tf.tensor1d(gv), tf.tensor1d(bv)];
        const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAINING, { x, gamma, beta }, attrs) as tf.Tensor[];
        const dy = tf.tensor2d(weights, [rows, channels]);
        const grads = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, { x, dy, gamma, mean, variance, y }, attrs) as tf.Tensor[];
        return [y, mean, variance, ...grads].map((t) => t.dataSync() as Float32Array);
      });
      expect(Object.fromEntries(calls)).toEqual({ batchNormTraining: 1, batchNormTrainingGradient: 1 });
      const reference = await on('cpu', () => {
        const [x, gamma, beta] = [tf.tensor2d(xv, [rows, channels]), tf.tensor1d(gv), tf.tensor1d(bv)];
        const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { mean, variance } = tf.moments(a, 0);
          const y = tf.batchNorm(a, mean, variance, b, g, attrs.epsilon);
          return relu ? tf.relu(y) : y;
        };
        const { mean, variance } = tf.moments(x, 0);
        const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b), tf.tensor2d(weights, [rows, channels]))))([x, gamma, beta]);
        return [f(x, gamma, beta), mean, variance, ...grads];
      });
      ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'].forEach((label, i) => expectClose(native[i], reference[i], `batch norm: ${label}`));
    });
  }

  // The fused softmax terms against their definitions in tfjs ops on the cpu backend: the
  // cross-entropy over the pixels counted, the suppression term, and the gradient of a weighted sum.
  const lossCases: [string, number[] | undefined, { ignoreIndex: number; excludedClass: number; suppressedClass: number }][] = [
    ['cross-entropy only', [0, 1, 255, 3, 4, 2, 7, 3, -2, 1], { ignoreIndex: 255, excludedClass: -1, suppressedClass: -1 }],
    ['both terms, the suppressed class excluded', [0, 1, 255, 3, 4, 2, 7, 3, -2, 1], { ignoreIndex: 255, excludedClass: 3, suppressedClass: 3 }],
    ['suppression only', undefined, { ignoreIndex: 255, excludedClass: -1, suppressedClass: 0 }],
    ['no pixel counted', [255, 255, 255, 255, 255, 255, 255, 255, 255, 255], { ignoreIndex: 255, excludedClass: -1, suppressedClass: 4 }],
  ];
  for (const [name, labelValues, attrs] of lossCases) {
    it(`softmax losses and their gradient: ${name}`, async () => {
      const rows = 2000; // more than one block of rows, split between the threads
      const k = 5;
      const logits = uniform([rows, k], 23).map((e) => e * 8);
      const labels = labelValues && Int32Array.from({ length: rows }, (_, i) => labelValues[(i * 7) % labelValues.length]);
      const dy = [0.7, 10];
      calls.clear();
      await tf.setBackend('wasm');
      const native = tf.tidy(() => {
        const x = tf.tensor2d(logits, [rows, k]);
        const inputs: tf.NamedTensorMap = labels ? { logits: x, labels: tf.tensor1d(labels, 'int32') } : { logits: x };
        const [losses, p, count] = tf.engine().runKernel(SOFTMAX_LOSSES, inputs, attrs) as tf.Tensor[];
        const dx = tf.engine().runKernel(SOFTMAX_LOSSES_GRAD, { ...inputs, probabilities: p, count, dy: tf.tensor1d(dy) }, attrs) as tf.Tensor;
        return [losses, p, dx, count].map((t) => t.dataSync() as Float32Array);
      });
      expect(Object.fromEntries(calls)).toEqual({ softmaxLosses: 1, softmaxLossesGradient: 1 });
      const reference = await on('cpu', () => {
        const x = tf.tensor2d(logits, [rows, k]);
        const counted = Array.from({ length: rows }, (_, i) => !!labels && labels[i] >= 0 && labels[i] < k && labels[i] !== attrs.ignoreIndex && labels[i] !== attrs.excludedClass);
        const count = counted.filter(Boolean).length;
        const picks = tf.oneHot(counted.map((c, i) => (c ? labels![i] : -1)), k);
        const terms = (t: tf.Tensor) => {
          const crossEntropy = tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(t), picks))), Math.max(count, 1));
          const suppression = attrs.suppressedClass >= 0 ? tf.mean(tf.slice(tf.softmax(t), [0, attrs.suppressedClass], [rows, 1])) : tf.scalar(0);
          return tf.stack([crossEntropy, suppression]);
        };
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(terms(t), tf.tensor1d(dy))))(x);
        return [terms(x), tf.softmax(x), dx, tf.tensor1d([count])];
      });
      ['losses', 'probabilities', 'gradient'].forEach((label, i) => expectClose(native[i], reference[i], `${name}: ${label}`));
      expect(Array.from(native[3]), `${name}: count`).toEqual(Array.from(reference[3]));
    });
  }

  it('softmax losses: the same sums with 1 thread as with 2', async () => {
    await tf.setBackend('wasm');
    const logits = uniform([5000, 4], 24);
    const labels = Int32Array.from({ length: 5000 }, (_, i) => i % 5);
    const run = () => tf.tidy(() => Array.from((tf.engine().runKernel(SOFTMAX_LOSSES, { logits: tf.tensor2d(logits, [5000, 4]), labels: tf.tensor1d(labels, 'int32') }, { ignoreIndex: 255, excludedClass: 1, suppressedClass: 2 }) as tf.Tensor[])[0].dataSync()));
    const two = run();
    addon!.setThreads(1);
    const one = run();
    addon!.setThreads(2);
    expect(one).toEqual(two);
  });

  // Every sum whose parts the threads could split (a convolution's filter gradient, a short and
  // wide product, a reduction over rows) is parted by the shapes alone: the same bits for any
  // number of threads.
  it('gives the same bits with 1, 2, 3 and 5 threads: filter gradients, short wide products, sums over rows', async () => {
    await tf.setBackend('wasm');
    const xv = uniform([4, 32, 32, 16], 30);
    const dyv = uniform([4, 32, 32, 16], 31);
    const wide = [uniform([8, 8192], 32), uniform([8192, 8], 33)];
    const rows = uniform([5000, 33], 34);
    const run = () => {
      calls.clear();
      const results = tf.tidy(() => {
        const x = tf.tensor4d(xv, [4, 32, 32, 16]);
        const dy = tf.tensor4d(dyv, [4, 32, 32, 16]);
        const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 16, 16] }) as tf.Tensor;
        // dilated, region by region of the taps that read the image: the forward, and the filter
        // gradient tap by tap
        const dilated = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 12 } as const;
        const dilatedForward = tf.conv2d(x, tf.reshape(dw, [3, 3, 16, 16]) as tf.Tensor4D, 1, 'same', 'NHWC', 12);
        const dilatedDw = tf.engine().runKernel(DILATED_CONV2D_FILTER_GRAD, { x, dy }, { ...dilated, filterShape: [3, 3, 16, 16] }) as tf.Tensor;
        const product = tf.matMul(tf.tensor2d(wide[0], [8, 8192]), tf.tensor2d(wide[1], [8192, 8]));
        const batched = tf.matMul(tf.tensor3d(wide[0], [1, 8, 8192]), tf.tensor3d(wide[1], [1, 8192, 8]));
        const sum = tf.sum(tf.tensor2d(rows, [5000, 33]), 0);
        const mean = tf.mean(tf.tensor2d(rows, [5000, 33]), 0);
        return [dw, product, batched, sum, mean, dilatedForward, dilatedDw].map((t) => Array.from(t.dataSync()));
      });
      expect(Object.fromEntries(calls)).toEqual({ conv2dFilterGradient: 2, conv2d: 1, matMul: 2, rows: 2 });
      return results;
    };
    const byThreads = withThreads(run);
    // and they are the sums asked for
    const reference = await on('cpu', () => [tf.sum(tf.tensor2d(rows, [5000, 33]), 0)]);
    expectClose(Float32Array.from(byThreads.get(1)![3]), reference[0], 'sum over rows');
  });

  it('gives the same bits with 1, 2, 3 and 5 threads where a convolution has fewer tiles of rows than threads', async () => {
    await tf.setBackend('wasm');
    const xv = uniform([2, 4, 5, 48], 40);
    const wv = uniform([3, 3, 48, 200], 41);
    const dyv = uniform([2, 4, 5, 200], 42);
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, [2, 4, 5, 48]);
        const w = tf.tensor4d(wv, [3, 3, 48, 200]);
        const dy = tf.tensor4d(dyv, [2, 4, 5, 200]);
        const y = tf.conv2d(x, w, 1, 'same');
        const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 4, 5, 48] }) as tf.Tensor;
        const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 48, 200] }) as tf.Tensor;
        return [y, dx, dw].map((t) => Array.from(t.dataSync()));
      });
    withThreads(run);
  });

  it('keeps no tensor and no memory it made', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(uniform([2, 8, 8, 4], 10), [2, 8, 8, 4]);
    const w = tf.tensor4d(uniform([3, 3, 4, 4], 11), [3, 3, 4, 4]);
    const step = () => tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]).forEach((t) => t.dataSync()));
    step();
    const before = tf.memory();
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    tf.dispose([x, w]);
  });
});
