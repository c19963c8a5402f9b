import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { type KernelOverride, baseKernel, kernelOverrides, registerKernelOverrides, unregisterKernelOverrides } from './kernel-overrides.js';

// Kernels of their own on the cpu backend, so that no tfjs kernel changes: `Base` has a base kernel
// (x + 1), `Bare` has none.
const BASE = 'KernelOverridesTestBase';
const BARE = 'KernelOverridesTestBare';

/** An override that takes the calls whose first value is at least `from`, giving x + `add`. */
function adding(kernelName: string, source: string, priority: number, add: number, from = -Infinity): KernelOverride {
  return {
    kernelName,
    backendName: 'cpu',
    source,
    priority,
    run: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      const values = (backend as tf.KernelBackend).readSync(x.dataId) as Float32Array;
      if (values[0] < from) return undefined;
      return (backend as tf.KernelBackend & { makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo }).makeTensorInfo(
        x.shape,
        'float32',
        values.map((v) => v + add),
      );
    },
  };
}

/** What the kernel gives for [value]. */
const call = (kernelName: string, value: number) => tf.tidy(() => (tf.engine().runKernel(kernelName, { x: tf.tensor1d([value]) }, {}) as tf.Tensor).dataSync()[0]);

describe('kernel overrides', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    tf.registerKernel({ kernelName: BASE, backendName: 'cpu', kernelFunc: (args) => adding(BASE, 'base', 0, 1).run(args) as tf.TensorInfo });
  });

  it('run by priority whichever registers first; a declined call goes to the next, then to the base kernel', () => {
    const native = adding(BASE, 'native', 300, 100, 10); // takes values >= 10
    const faster = adding(BASE, 'faster', 200, 10, 5); // takes values >= 5
    const results: Record<string, unknown> = {};
    for (const [order, overrides] of [
      ['native first', [native, faster]],
      ['faster first', [faster, native]],
    ] as const) {
      const stock = tf.getKernel(BASE, 'cpu');
      for (const o of overrides) registerKernelOverrides([o]);
      results[order] = {
        chain: kernelOverrides(BASE, 'cpu').map((o) => o.source),
        values: [call(BASE, 20), call(BASE, 7), call(BASE, 1)],
        base: baseKernel(BASE, 'cpu') === stock,
      };
      unregisterKernelOverrides('native');
      unregisterKernelOverrides('faster');
      // The base kernel is back in tfjs's registry.
      expect(tf.getKernel(BASE, 'cpu'), order).toBe(stock);
      expect(kernelOverrides(BASE, 'cpu'), order).toEqual([]);
    }
    expect(results['native first']).toEqual({ chain: ['native', 'faster'], values: [120, 17, 2], base: true });
    expect(results['faster first']).toEqual(results['native first']);
  });

  it('replace an override registered again by its source; refuse two sources at one priority', () => {
    registerKernelOverrides([adding(BASE, 'a', 10, 5)]);
    const registered = tf.getKernel(BASE, 'cpu');
    registerKernelOverrides([adding(BASE, 'a', 10, 6)]);
    // The chain changed, not tfjs's registry.
    expect(tf.getKernel(BASE, 'cpu')).toBe(registered);
    expect(kernelOverrides(BASE, 'cpu').map((o) => o.source)).toEqual(['a']);
    expect(call(BASE, 0)).toBe(6);
    expect(() => registerKernelOverrides([adding(BASE, 'b', 20, 1), adding(BASE, 'c', 10, 1)])).toThrow(/c and a both have priority 10/);
    // Nothing of a refused batch is registered.
    expect(kernelOverrides(BASE, 'cpu').map((o) => o.source)).toEqual(['a']);
    unregisterKernelOverrides('a');
  });

  it('give a kernel the backend lacks, and say so when none of them takes a call', () => {
    expect(tf.getKernel(BARE, 'cpu')).toBeUndefined();
    registerKernelOverrides([adding(BARE, 'only', 1, 3, 0)]);
    expect(baseKernel(BARE, 'cpu')).toBeUndefined();
    expect(call(BARE, 2)).toBe(5);
    expect(() => call(BARE, -1)).toThrow(/KernelOverridesTestBare on cpu: no kernel takes this call \(float32 \[1\]\)/);
    unregisterKernelOverrides('only');
    expect(tf.getKernel(BARE, 'cpu')).toBeUndefined();
  });

  it('keep no tensor', () => {
    registerKernelOverrides([adding(BASE, 'a', 10, 5, 3)]);
    const before = tf.memory().numTensors;
    call(BASE, 4);
    call(BASE, 0);
    expect(tf.memory().numTensors).toBe(before);
    unregisterKernelOverrides('a');
  });
});
