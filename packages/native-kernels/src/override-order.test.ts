// The native kernels and @dropclass/tfjs-wasm-train's own wasm kernels go through one mechanism (the
// engine's kernel overrides): whichever registers first, every kernel tries the native one, then
// the engine's, then wasm's own.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { OVERRIDE_SOURCE, kernelOverrides, registerWasmGradientKernels, unregisterKernelOverrides } from '@dropclass/tfjs-wasm-train';
import { describe, expect, it } from 'vitest';
import { loadAddon, type NativeAddon } from './addon.js';
import { NATIVE_KERNELS, NATIVE_SOURCE, registerOnWasm } from './wasm-kernels.js';

const { addon } = loadAddon();

/** Counts the addon's convolutions and products, to tell which kernel ran a call. */
let ran: string[] = [];
function counting(inner: NativeAddon): NativeAddon {
  const wrapped: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(inner) as (keyof NativeAddon)[]) {
    const value = inner[name];
    wrapped[name] =
      name === 'matMul' || name === 'conv2dInputGradient' ? (...args: unknown[]) => (ran.push(name), (value as (...a: unknown[]) => void)(...args)) : value;
  }
  return wrapped as unknown as NativeAddon;
}

describe.runIf(addon)('native kernels and the engine registered in either order', () => {
  it('give every kernel the same chain, and the calls the same kernels', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    const names = [...new Set([...NATIVE_KERNELS.keys(), tf.Conv2DBackpropFilter, tf.DepthwiseConv2dNativeBackpropInput, tf.Identity])];
    const registerNative = () => registerOnWasm(counting(addon!));
    const outcomes: Record<string, unknown> = {};
    for (const [order, steps] of [
      ['native first', [registerNative, registerWasmGradientKernels]],
      ['engine first', [registerWasmGradientKernels, registerNative]],
    ] as const) {
      const stock = new Map(names.map((name) => [name, tf.getKernel(name, 'wasm')]));
      for (const step of steps) step();
      ran = [];
      tf.tidy(() => {
        // A product the native kernel takes, and one it leaves (a batch broadcast) to the engine's or wasm's.
        tf.matMul(tf.ones([4, 3]), tf.ones([3, 2])).dataSync();
        tf.matMul(tf.ones([2, 1, 3, 4]), tf.ones([1, 3, 4, 2])).dataSync();
        tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: tf.ones([1, 4, 4, 2]), filter: tf.ones([3, 3, 3, 2]) }, { strides: 1, pad: 'same', inputShape: [1, 4, 4, 3] });
      });
      outcomes[order] = { chains: Object.fromEntries(names.map((name) => [name, kernelOverrides(name, 'wasm').map((o) => `${o.source} ${o.priority}`)])), ran };
      unregisterKernelOverrides(NATIVE_SOURCE);
      unregisterKernelOverrides(OVERRIDE_SOURCE);
      for (const name of names) expect(tf.getKernel(name, 'wasm'), `${order}: ${name} back to wasm's own`).toBe(stock.get(name));
    }
    const { chains } = outcomes['native first'] as { chains: Record<string, string[]> };
    expect(chains[tf.Conv2D]).toEqual([`${NATIVE_SOURCE} 300`]);
    expect(chains[tf.BatchMatMul]).toEqual([`${NATIVE_SOURCE} 300`, `${OVERRIDE_SOURCE} 200`]);
    expect(chains[tf.Conv2DBackpropFilter]).toEqual([`${NATIVE_SOURCE} 300`, `${OVERRIDE_SOURCE} 100`]);
    expect(chains[tf.Identity]).toEqual([`${OVERRIDE_SOURCE} 200`]);
    expect(outcomes['native first']).toMatchObject({ ran: ['matMul', 'conv2dInputGradient'] });
    expect(outcomes['engine first']).toEqual(outcomes['native first']);
  });
});
