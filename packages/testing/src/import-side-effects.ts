// The harness of the packages' import side-effects tests: what tfjs holds (kernels, gradients,
// flags, backends, serializable classes) before and after a package is imported, and what changed.
import * as tf from '@tensorflow/tfjs-core';

/** The backends whose kernels a snapshot records. */
export const BACKENDS = ['cpu', 'wasm', 'webgl', 'tensorflow'];

/** Gradients a training engine may replace (`@dropclass/tfjs-wasm-train`'s faster ones). */
export const REPLACED_GRADIENTS = [tf.FusedBatchNorm, tf.Sum, tf.Mean];

/** What tfjs holds at one moment. */
export interface Snapshot {
  /** Kernel functions by `backend/kernelName`. */
  kernels: Map<string, tf.KernelFunc>;
  /** Gradients by kernel name: those of every registered kernel and of `REPLACED_GRADIENTS`. */
  gradients: Map<string, tf.GradConfig | undefined>;
  flags: ReturnType<ReturnType<typeof tf.env>['getFlags']>;
  /** Names of the registered backend factories, sorted. */
  backendFactories: string[];
  /** Serializable classes (layers and the like) by class name. */
  classes: Map<string, unknown>;
}

export function snapshot(): Snapshot {
  const kernels = new Map<string, tf.KernelFunc>();
  for (const backend of BACKENDS) {
    for (const config of tf.getKernelsForBackend(backend)) kernels.set(`${backend}/${config.kernelName}`, config.kernelFunc);
  }
  const names = new Set([...REPLACED_GRADIENTS, ...[...kernels.keys()].map((key) => key.split('/')[1])]);
  const gradients = new Map([...names].map((name) => [name, tf.getGradient(name)]));
  const classes = new Map(Object.entries(tf.serialization.SerializationMap.getMap().classNameMap).map(([name, [cls]]) => [name, cls]));
  const backendFactories = Object.keys((tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory).sort();
  return { kernels, gradients, flags: { ...tf.env().getFlags() }, backendFactories, classes };
}

/** Keys whose values differ between two maps (added, removed or replaced). */
export function changed<V>(before: Map<string, V>, after: Map<string, V>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}
