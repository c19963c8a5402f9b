// Importing @dropclass/tfjs-wasm-train must leave tfjs as it was: its kernels, gradients, flags and
// backends. Only initBackend() (or the explicit register functions) changes tfjs. Vitest runs this
// file in a worker of its own, so the package is imported here for the first time.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';

const BACKENDS = ['cpu', 'wasm', 'webgl', 'tensorflow'];
const REPLACED_GRADIENTS = [tf.FusedBatchNorm, tf.Sum, tf.Mean];

interface Snapshot {
  kernels: Map<string, tf.KernelFunc>;
  gradients: Map<string, tf.GradConfig | undefined>;
  flags: ReturnType<ReturnType<typeof tf.env>['getFlags']>;
  backendFactories: string[];
}

function snapshot(): Snapshot {
  const kernels = new Map<string, tf.KernelFunc>();
  for (const backend of BACKENDS) {
    for (const config of tf.getKernelsForBackend(backend)) kernels.set(`${backend}/${config.kernelName}`, config.kernelFunc);
  }
  const names = new Set([...REPLACED_GRADIENTS, ...[...kernels.keys()].map((key) => key.split('/')[1])]);
  const gradients = new Map([...names].map((name) => [name, tf.getGradient(name)]));
  const backendFactories = Object.keys((tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory).sort();
  return { kernels, gradients, flags: { ...tf.env().getFlags() }, backendFactories };
}

/** Keys whose values differ between two maps (added, removed or replaced). */
function changed<V>(before: Map<string, V>, after: Map<string, V>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}

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
