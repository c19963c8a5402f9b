// Importing @dropclass/tfjs-wasm-train must leave tfjs as it was: its kernels, gradients, flags and
// backends. Only initBackend() (or the explicit register functions) changes tfjs. Vitest runs this
// file in a worker of its own, so the package is imported here for the first time.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { REPLACED_GRADIENTS, changed, snapshot } from '@dropclass/testing/import-side-effects';
import { describe, expect, it } from 'vitest';

describe('importing @dropclass/tfjs-wasm-train', () => {
  it('changes no tfjs kernel, gradient, flag or backend; initBackend() registers the gradients and the wasm kernels, once', async () => {
    const before = snapshot();
    // The stock gradients are there (tfjs-layers registers them), so a replacement would show.
    for (const name of REPLACED_GRADIENTS) expect(before.gradients.get(name), name).toBeDefined();
    expect(before.kernels.size).toBeGreaterThan(100);

    const engine = await import('./index.js');
    // The built entry point, which users import.
    await import('@dropclass/tfjs-wasm-train');

    const after = snapshot();
    expect(changed(before.kernels, after.kernels)).toEqual([]);
    expect(changed(before.gradients, after.gradients)).toEqual([]);
    expect(after.flags).toEqual(before.flags);
    expect(after.backendFactories).toEqual(before.backendFactories);

    expect(await engine.initBackend({ backend: 'wasm', threads: 1, quiet: true })).toBe('wasm');
    const registered = snapshot();
    expect(changed(before.gradients, registered.gradients)).toEqual([...REPLACED_GRADIENTS].sort());
    REPLACED_GRADIENTS.forEach((name, i) => expect(registered.gradients.get(name)).toBe(engine.FASTER_GRADIENTS[i]));
    const kernelChanges = changed(before.kernels, registered.kernels);
    expect(kernelChanges.every((key) => key.startsWith('wasm/'))).toBe(true);
    for (const name of [tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput, tf.DepthwiseConv2dNativeBackpropFilter, tf.DepthwiseConv2dNativeBackpropInput]) {
      expect(kernelChanges, name).toContain(`wasm/${name}`);
    }
    engine.registerFasterGradients();
    await engine.initBackend({ backend: 'wasm', quiet: true });
    const again = snapshot();
    expect(changed(registered.gradients, again.gradients)).toEqual([]);
    expect(changed(registered.kernels, again.kernels)).toEqual([]);
  });
});
