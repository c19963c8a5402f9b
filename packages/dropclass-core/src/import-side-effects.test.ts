// Importing @dropclass/core must leave tfjs as it was: its kernels, gradients, flags, backends,
// registered layer classes and tfjs-layers' automatic layer names. It registers no backend and no
// kernel or gradient of its own (those come from the backend package the user picks, such as
// @dropclass/tfjs-wasm-train). Vitest runs this file in a worker of its own, so the package is
// imported here for the first time.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { REPLACED_GRADIENTS, changed, snapshot } from '@dropclass/testing/import-side-effects';
import { describe, expect, it } from 'vitest';

/** One layer of each kind the packages build; each call takes one automatic name per kind. */
const LAYER_FACTORIES: Record<string, () => tfl.layers.Layer> = {
  batchNormalization: () => tfl.layers.batchNormalization(),
  conv2d: () => tfl.layers.conv2d({ filters: 1, kernelSize: 1 }),
  dense: () => tfl.layers.dense({ units: 1 }),
  activation: () => tfl.layers.activation({ activation: 'relu' }),
  reLU: () => tfl.layers.reLU(),
  add: () => tfl.layers.add(),
  concatenate: () => tfl.layers.concatenate(),
  maxPooling2d: () => tfl.layers.maxPooling2d({ poolSize: 2 }),
  upSampling2d: () => tfl.layers.upSampling2d({ size: [2, 2] }),
};

/** The automatic name's number of one layer of each kind. */
function nextNameNumbers(): Record<string, number> {
  return Object.fromEntries(
    Object.entries(LAYER_FACTORIES).map(([kind, make]) => {
      const name = make().name;
      const match = /(\d+)$/.exec(name);
      if (!match) throw new Error(`import-side-effects.test.ts: layer name ${JSON.stringify(name)} of ${kind} has no number suffix`);
      return [kind, Number(match[1])];
    }),
  );
}

describe('importing @dropclass/core', () => {
  it('changes no tfjs kernel, gradient, flag, backend, layer class or automatic layer name, and loads no backend package', async () => {
    const namesBefore = nextNameNumbers();
    const before = snapshot();
    // The stock gradients are there (tfjs-layers registers them), so a replacement would show.
    for (const name of REPLACED_GRADIENTS) expect(before.gradients.get(name), name).toBeDefined();
    expect(before.kernels.size).toBeGreaterThan(100);

    const core = await import('./index.js');
    await import('./conformance/index.js');
    // The built entry point, which users import.
    await import('@dropclass/core');

    const after = snapshot();
    expect(changed(before.kernels, after.kernels)).toEqual([]);
    expect(changed(before.gradients, after.gradients)).toEqual([]);
    expect(after.flags).toEqual(before.flags);
    expect(after.backendFactories).toEqual(before.backendFactories);
    // Every class tfjs registered is still the same class; the package adds its three layer classes
    // under names of its own, so that saved models load after a plain import.
    const classChanges = changed(before.classes, after.classes);
    expect(classChanges.filter((name) => before.classes.has(name))).toEqual([]);
    expect(classChanges).toEqual(['BilinearUpSampling2D', 'DropClassBatchNormalization', 'DropClassHead']);
    // One more layer of each kind after the import: the next number, as if nothing had been imported.
    const namesAfter = nextNameNumbers();
    for (const kind of Object.keys(namesBefore)) expect(namesAfter[kind], kind).toBe(namesBefore[kind] + 1);
    // The package's batch norm extends tfjs-layers' own class.
    expect(Object.getPrototypeOf(core.batchNormalization().constructor)).toBe(tfl.layers.batchNormalization().constructor);

    // The compute engine lives in @dropclass/tfjs-wasm-train now.
    for (const name of ['initBackend', 'registerWasmGradientKernels', 'startThreadedWasm', 'registerDropClassGradients']) expect(core, name).not.toHaveProperty(name);
    // No backend package came with it: the wasm backend (which core used to bring) is not registered.
    expect(tf.findBackendFactory('wasm')).toBeNull();
  });
});
