import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { nativeKernelsUnavailable } from '@dropclass/native-kernels';
import { describe, expect, it } from 'vitest';
import { initBackend, nativeKernelsState, wasmThreadCount } from '@dropclass/tfjs-wasm-train';
import { randomValues } from '@dropclass/testing';

describe('initBackend with @dropclass/native-kernels installed', () => {
  it('puts the native kernels, with the threads, in front of wasm on 1 thread, and a training step computes what cpu computes', async () => {
    // @dropclass/tfjs-wasm-train's own tests leave them out (its vitest.config.ts).
    process.env.DROPCLASS_NATIVE = '1';
    const why = nativeKernelsUnavailable();
    const messages: string[] = [];
    const log = console.error;
    console.error = (line: string) => messages.push(line);
    try {
      expect(await initBackend({ backend: 'wasm', threads: 2 })).toBe('wasm');
    } finally {
      console.error = log;
    }
    if (why) {
      expect(wasmThreadCount()).toBe(2);
      expect(nativeKernelsState()).toEqual({ active: false, reason: why });
      expect(messages.join('\n')).toContain(`native kernels off: ${why}`);
      return;
    }
    expect(wasmThreadCount()).toBe(1);
    expect(nativeKernelsState()).toMatchObject({ active: true, threads: 2 });
    expect(messages.join('\n')).toMatch(/backend wasm \(1 thread\), native kernels \((avx512f\+fma|avx2\+fma|generic), 2 threads\)/);

    // conv -> bias -> ReLU -> conv (stride 2) -> a product with a transposed operand -> loss; the
    // wasm heap is shared memory here, which the native kernels read and write in place.
    const values = [randomValues([2, 12, 12, 5], 1), randomValues([3, 3, 5, 16], 2), randomValues([16], 3), randomValues([3, 3, 16, 8], 4), randomValues([8, 6], 5)];
    const shapes = [[2, 12, 12, 5], [3, 3, 5, 16], [16], [3, 3, 16, 8], [8, 6]];
    const step = (): Float32Array[] =>
      tf.tidy(() => {
        const [x, w1, b1, w2, m] = values.map((v, i) => tf.tensor(v, shapes[i]));
        const loss = (w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, m: tf.Tensor) => {
          const h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'), b1));
          const y = tf.conv2d(h as tf.Tensor4D, w2 as tf.Tensor4D, 2, 'same');
          const z = tf.matMul(tf.reshape(y, [-1, 8]), m as tf.Tensor2D);
          return tf.mean(tf.square(tf.matMul(z, z, true, false)));
        };
        const { value, grads } = tf.valueAndGrads(loss)([w1, b1, w2, m]);
        return [value, ...grads].map((t) => t.dataSync() as Float32Array);
      });
    const onWasm = step();
    await tf.setBackend('cpu');
    const onCpu = step();
    onCpu.forEach((want, i) => {
      const scale = Math.max(...want.map(Math.abs));
      const worst = Math.max(...want.map((v, j) => Math.abs(onWasm[i][j] - v)));
      expect(worst / scale, `result ${i}`).toBeLessThan(1e-4);
    });
  });
});
