import * as tf from '@tensorflow/tfjs-core';

/** What a kernel receives from tfjs: its inputs, its backend and its attributes. */
export type KernelCall = Parameters<tf.KernelFunc>[0];

/**
 * A kernel put in front of a backend's registered one, for the calls it takes. Overrides of one
 * kernel on one backend form a chain, tried from the highest `priority` down; the first that returns
 * a result runs the call, and a call none takes goes to the kernel that was registered before any
 * override (the base kernel: the backend's own, or none).
 */
export interface KernelOverride {
  /** The tfjs kernel it overrides (`tf.Conv2D`, or a name of its own such as core's fused kernels). */
  kernelName: string;
  /** The backend it runs on (`'wasm'`). */
  backendName: string;
  /**
   * Who registers it, such as a package's name. One override per source in a chain: registering
   * one again with the same source replaces it, and `unregisterKernelOverrides(source)` removes it.
   */
  source: string;
  /**
   * Where it stands in the chain: higher runs first. Two sources may not give one kernel the same
   * priority, so the order never depends on which registered first. `OVERRIDE_PRIORITY` has this
   * package's and `@dropclass/native-kernels`' priorities.
   */
  priority: number;
  /**
   * Runs the call, or declines it by returning `undefined`, which passes it to the next override in
   * the chain, in the end to the base kernel. An override declines before it makes any output.
   */
  run(call: KernelCall): tf.TensorInfo | tf.TensorInfo[] | undefined;
}

/**
 * The priorities of the overrides this package and `@dropclass/native-kernels` register, highest
 * first: the native kernels, then this package's faster wasm kernels, then its composites of the
 * gradient kernels wasm lacks (registered only where the backend has no kernel of that name).
 */
export const OVERRIDE_PRIORITY = { native: 300, faster: 200, composite: 100 } as const;

interface Chain {
  kernelName: string;
  backendName: string;
  /** The kernel registered before the first override, if any. */
  base: tf.KernelConfig | undefined;
  /** Highest priority first. */
  overrides: KernelOverride[];
}

const chains = new Map<string, Chain>();
const key = (kernelName: string, backendName: string) => `${backendName}/${kernelName}`;

function describeInputs(inputs: tf.NamedTensorInfoMap): string {
  return Object.values(inputs)
    .map((t) => `${t?.dtype} [${t?.shape.join(', ')}]`)
    .join(', ');
}

/** Registers with tfjs the kernel that runs a chain; the base kernel's setup (wasm binds its function there) stays. */
function dispatch(kernelName: string, backendName: string, chain: Chain): void {
  tf.registerKernel({
    kernelName,
    backendName,
    setupFunc: chain.base?.setupFunc,
    disposeFunc: chain.base?.disposeFunc,
    kernelFunc: (call) => {
      for (const override of chain.overrides) {
        const out = override.run(call);
        if (out !== undefined) return out;
      }
      if (!chain.base) throw new Error(`${kernelName} on ${backendName}: no kernel takes this call (${describeInputs(call.inputs)})`);
      return chain.base.kernelFunc(call);
    },
  });
}

/**
 * Puts overrides in their kernels' chains, by priority. The first override of a kernel on a
 * backend takes the kernel's place in tfjs's registry once; later ones only join its chain.
 * Registering again an override of the same source replaces it. Throws when two sources would give
 * one kernel the same priority (nothing is registered then).
 */
export function registerKernelOverrides(overrides: readonly KernelOverride[]): void {
  for (const o of overrides) {
    const chain = chains.get(key(o.kernelName, o.backendName));
    const rival = [...(chain?.overrides ?? []), ...overrides].find((p) => p !== o && p.kernelName === o.kernelName && p.backendName === o.backendName && p.priority === o.priority && p.source !== o.source);
    if (rival) {
      throw new Error(`kernel overrides of ${o.kernelName} on ${o.backendName}: ${o.source} and ${rival.source} both have priority ${o.priority}; give them different priorities`);
    }
  }
  for (const override of overrides) {
    const { kernelName, backendName } = override;
    let chain = chains.get(key(kernelName, backendName));
    if (!chain) {
      const base = tf.getKernel(kernelName, backendName);
      if (base) tf.unregisterKernel(kernelName, backendName);
      chain = { kernelName, backendName, base, overrides: [] };
      chains.set(key(kernelName, backendName), chain);
      dispatch(kernelName, backendName, chain);
    }
    chain.overrides = [...chain.overrides.filter((o) => o.source !== override.source), override].sort((p, q) => q.priority - p.priority);
  }
}

/**
 * Removes a source's overrides (on one backend, or all). A kernel left without overrides gets its
 * base kernel back in tfjs's registry (or none, where there was none).
 */
export function unregisterKernelOverrides(source: string, backendName?: string): void {
  for (const [id, chain] of chains) {
    if (backendName !== undefined && chain.backendName !== backendName) continue;
    chain.overrides = chain.overrides.filter((o) => o.source !== source);
    if (chain.overrides.length > 0) continue;
    tf.unregisterKernel(chain.kernelName, chain.backendName);
    if (chain.base) tf.registerKernel(chain.base);
    chains.delete(id);
  }
}

/** A kernel's overrides on a backend, in the order they are tried (empty when it has none). */
export function kernelOverrides(kernelName: string, backendName: string): readonly KernelOverride[] {
  return [...(chains.get(key(kernelName, backendName))?.overrides ?? [])];
}

/** The kernel a call goes to when no override takes it: the one registered before any override, else the one registered now. */
export function baseKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  const chain = chains.get(key(kernelName, backendName));
  return chain ? chain.base : tf.getKernel(kernelName, backendName);
}
