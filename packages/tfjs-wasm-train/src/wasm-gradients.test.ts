import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './select.js';
import { expectClose, randomValues } from '@dropclass/testing';
import { registerWasmGradientKernels } from './wasm-gradients.js';

type Pad = 'same' | 'valid';
interface Case {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  out: number;
  strides: number;
  pad: Pad;
  dilation: number;
}

const conv2dCases: Case[] = [];
for (const [x, k] of [
  [[2, 7, 9, 3], [3, 3]],
  [[1, 8, 8, 4], [1, 1]],
  [[2, 9, 7, 2], [5, 5]],
  [[1, 6, 5, 3], [3, 2]],
  // fewer input than output channels, also with valid padding: the filter gradient convolves the output gradient with the input
  [[1, 6, 6, 2], [3, 3]],
] as [Case['x'], Case['k']][]) {
  for (const pad of ['same', 'valid'] as Pad[]) {
    for (const [strides, dilation] of [[1, 1], [2, 1], [1, 2]]) {
      const effective = (Math.max(...k) - 1) * dilation + 1;
      if (pad === 'valid' && (effective > x[1] || effective > x[2])) continue;
      conv2dCases.push({ name: `x ${x.join('x')} k ${k.join('x')} s${strides} d${dilation} ${pad}`, x, k, out: 5, strides, pad, dilation });
    }
  }
}

/** Runs `fn` on a backend with fresh copies of the inputs and returns the results' values. */
async function on(backend: 'wasm' | 'cpu', inputs: Float32Array[], shapes: number[][], fn: (...t: tf.Tensor[]) => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => fn(...inputs.map((v, i) => tf.tensor(v, shapes[i]))).map((t) => t.dataSync() as Float32Array));
}


describe('wasm gradient kernels agree with the cpu backend', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', quiet: true });
    registerWasmGradientKernels();
  });

  it('registers the missing kernels and a forward-conv Conv2DBackpropInput, idempotently', () => {
    const first = registerWasmGradientKernels();
    expect(registerWasmGradientKernels()).toBe(first);
    for (const name of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'Conv2DBackpropInput']) {
      expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
    }
  });

  it('conv2d gradients of a kernel with 4096 values per tap or more (its taps reversed by a product, not a gather), on small integers: exact', async () => {
    const ints = (shape: number[], seed: number) => tf.tidy(() => tf.randomUniform(shape, -3, 4, 'int32', seed).dataSync() as Int32Array);
    const shapes = [[2, 5, 6, 64], [3, 3, 64, 64], [2, 5, 6, 64]];
    const values = shapes.map((shape, i) => Float32Array.from(ints(shape, i + 1)));
    const grads = (x: tf.Tensor, w: tf.Tensor, r: tf.Tensor) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), r)))([x, w]);
    const [wasm, cpu] = [await on('wasm', values, shapes, grads), await on('cpu', values, shapes, grads)];
    expect(Array.from(wasm[0]), 'dx').toEqual(Array.from(cpu[0]));
    expect(Array.from(wasm[1]), 'dW').toEqual(Array.from(cpu[1]));
  });

  for (const c of conv2dCases) {
    it(`conv2d gradients (input and filter): ${c.name}`, async () => {
      const filterShape = [c.k[0], c.k[1], c.x[3], c.out];
      const x = randomValues(c.x.reduce((a, b) => a * b), 1);
      const w = randomValues(filterShape.reduce((a, b) => a * b), 2);
      const dilations: [number, number] = [c.dilation, c.dilation];
      const grads = (xt: tf.Tensor, wt: tf.Tensor) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad, 'NHWC', dilations))))([xt, wt]);
      // dilated conv2d has no gradient in tfjs: the kernels are then checked directly
      const direct = (xt: tf.Tensor, wt: tf.Tensor) => {
        const y = tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.strides, c.pad, 'NHWC', dilations);
        return [
          tf.engine().runKernel('Conv2DBackpropInput', { dy: y, filter: wt }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations, inputShape: c.x }) as tf.Tensor,
          tf.conv2dTranspose(y as tf.Tensor4D, wt as tf.Tensor4D, c.x, c.strides, c.pad),
        ];
      };
      if (c.dilation === 1) {
        const [wasm, cpu] = [await on('wasm', [x, w], [c.x, filterShape], grads), await on('cpu', [x, w], [c.x, filterShape], grads)];
        expectClose(wasm[0], cpu[0], 'dx');
        expectClose(wasm[1], cpu[1], 'dW');
        const [wasmDirect, cpuDirect] = [await on('wasm', [x, w], [c.x, filterShape], direct), await on('cpu', [x, w], [c.x, filterShape], direct)];
        expectClose(wasmDirect[0], cpuDirect[0], 'runKernel Conv2DBackpropInput');
        expectClose(wasmDirect[1], cpuDirect[1], 'conv2dTranspose');
      } else {
        const filterGrad = (xt: tf.Tensor, wt: tf.Tensor) => {
          const y = tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, c.strides, c.pad, 'NHWC', dilations);
          // cpu has no dilated Conv2DBackpropFilter either: compare with a finite-difference-free identity,
          // <dW, W> = <y, y> for the linear map W -> conv(x, W) with dy = y.
          const dW = tf.engine().runKernel('Conv2DBackpropFilter', { x: xt, dy: y }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations, filterShape }) as tf.Tensor;
          const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy: y, filter: wt }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations, inputShape: c.x }) as tf.Tensor;
          return [tf.sum(tf.mul(dW, wt)), tf.sum(tf.mul(dx, xt)), tf.sum(tf.square(y))];
        };
        const [sumW, sumX, yy] = await on('wasm', [x, w], [c.x, filterShape], filterGrad);
        expectClose(sumW, yy, '<dW, W> = |y|^2');
        expectClose(sumX, yy, '<dx, x> = |y|^2');
      }
    });
  }

  for (const [multiplier, strides, dilation, pad] of [
    [1, 1, 1, 'same'],
    [2, 1, 1, 'valid'],
    [1, 2, 1, 'same'],
    [2, 2, 1, 'valid'],
    [1, 1, 2, 'same'],
    [2, 1, 2, 'valid'],
  ] as [number, number, number, Pad][]) {
    it(`depthwise conv2d gradients: multiplier ${multiplier} s${strides} d${dilation} ${pad}, 7x9 input, 3x3 kernel`, async () => {
      const xShape = [2, 7, 9, 3];
      const filterShape = [3, 3, 3, multiplier];
      const x = randomValues(2 * 7 * 9 * 3, 3);
      const w = randomValues(9 * 3 * multiplier, 4);
      if (dilation === 1) {
        const grads = (xt: tf.Tensor, wt: tf.Tensor) =>
          tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad, 'NHWC', dilation))))([xt, wt]);
        const [wasm, cpu] = [await on('wasm', [x, w], [xShape, filterShape], grads), await on('cpu', [x, w], [xShape, filterShape], grads)];
        expectClose(wasm[0], cpu[0], 'dx');
        expectClose(wasm[1], cpu[1], 'dW');
      } else {
        // tfjs has no dilated depthwise gradient and the cpu kernels ignore dilation: check the adjoint
        // identities of the bilinear map instead, <dx, x> = <dW, W> = |y|^2 for dy = y.
        const identities = (xt: tf.Tensor, wt: tf.Tensor) => {
          const y = tf.depthwiseConv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, strides, pad, 'NHWC', dilation);
          const attrs = { strides, pad, dilations: dilation };
          const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: y, filter: wt }, { ...attrs, inputShape: xShape }) as tf.Tensor;
          const dW = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: xt, dy: y }, { ...attrs, filterShape }) as tf.Tensor;
          return [tf.sum(tf.mul(dx, xt)), tf.sum(tf.mul(dW, wt)), tf.sum(tf.square(y))];
        };
        const [sumX, sumW, yy] = await on('wasm', [x, w], [xShape, filterShape], identities);
        expectClose(sumX, yy, '<dx, x> = |y|^2');
        expectClose(sumW, yy, '<dW, W> = |y|^2');
      }
    });
  }

  it('a small conv net gets finite gradients on wasm without growing tf.memory().numTensors', async () => {
    await tf.setBackend('wasm');
    const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 5);
    const w1 = tf.variable(tf.randomNormal([3, 3, 3, 4], 0, 0.5, 'float32', 6));
    const w2 = tf.variable(tf.randomNormal([3, 3, 4, 2], 0, 0.5, 'float32', 7));
    const loss = () => tf.mean(tf.depthwiseConv2d(tf.relu(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 2, 'same')), w2 as tf.Tensor4D, 1, 'same')) as tf.Scalar;
    const step = () => {
      const { value, grads } = tf.variableGrads(loss, [w1, w2]);
      const finite = Object.values(grads).every((g) => g.dataSync().every(Number.isFinite));
      const nonzero = Object.values(grads).every((g) => g.dataSync().some((v) => v !== 0));
      tf.dispose([value, ...Object.values(grads)]);
      return finite && nonzero;
    };
    expect(step()).toBe(true);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w1, w2]);
  });
});
