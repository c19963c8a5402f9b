import * as tf from '@tensorflow/tfjs-core';

export interface KernelTime {
  kernel: string;
  calls: number;
  /** Time in the kernel itself, without the kernels it runs (a composite kernel runs others). */
  selfMs: number;
  /** Bytes of the new tensor data its calls return (data shared with an input or an inner kernel's output is not counted). */
  bytes: number;
}

export interface StepProfile {
  /** Wall time of the profiled calls, divided by `repeats`. */
  wallMs: number;
  /** Wall time outside every kernel: the engine's bookkeeping, the JavaScript between kernels, garbage collection. */
  outsideKernelsMs: number;
  /** Per kernel, slowest first; figures are per call of `run`. */
  kernels: KernelTime[];
  /** Kernel calls per call of `run`, nested ones included. */
  kernelCalls: number;
  /** Bytes of tensor data the kernels allocate per call of `run`. */
  bytesAllocated: number;
  /** Synchronous and asynchronous reads of tensor data back to JavaScript (dataSync, data, arraySync...) per call of `run`. */
  reads: number;
}

type Backend = { readSync: (dataId: object) => unknown; read: (dataId: object) => Promise<unknown> };

/** The data a kernel's result holds, by data id (one or several outputs). */
function outputs(result: tf.TensorInfo | tf.TensorInfo[]): tf.TensorInfo[] {
  return Array.isArray(result) ? result : [result];
}

/**
 * Times every kernel of the current backend while `run` is called `repeats` times. The kernel
 * functions in tfjs's registry are wrapped for the duration (and restored after), so that nested
 * kernels are attributed to themselves, not to the composite that called them.
 */
export function profileKernels(run: () => void, repeats = 1): StepProfile {
  const configs = tf.getKernelsForBackend(tf.getBackend());
  const times = new Map<string, { calls: number; selfMs: number; bytes: number }>();
  const childTime: number[] = [];
  // Data ids seen as some kernel's output: a composite returns its last inner kernel's data.
  const seen = new WeakSet<object>();
  const originals = configs.map((config) => config.kernelFunc);
  for (const config of configs) {
    const original = config.kernelFunc;
    (config as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      childTime.push(0);
      const start = performance.now();
      let bytes = 0;
      try {
        const result = original(args);
        const inputs = new Set(Object.values(args.inputs).map((t) => (t as tf.TensorInfo | undefined)?.dataId));
        for (const out of outputs(result)) {
          if (seen.has(out.dataId) || inputs.has(out.dataId)) continue;
          seen.add(out.dataId);
          bytes += tf.util.sizeFromShape(out.shape) * (out.dtype === 'bool' ? 1 : 4);
        }
        return result;
      } finally {
        const elapsed = performance.now() - start;
        const self = elapsed - childTime.pop()!;
        if (childTime.length > 0) childTime[childTime.length - 1] += elapsed;
        const entry = times.get(config.kernelName) ?? { calls: 0, selfMs: 0, bytes: 0 };
        entry.calls += 1;
        entry.selfMs += self;
        entry.bytes += bytes;
        times.set(config.kernelName, entry);
      }
    };
  }
  const backend = tf.backend() as unknown as Backend;
  const { readSync, read } = backend;
  let reads = 0;
  backend.readSync = (dataId) => (reads++, readSync.call(backend, dataId));
  backend.read = (dataId) => (reads++, read.call(backend, dataId));
  const start = performance.now();
  try {
    for (let i = 0; i < repeats; i++) run();
  } finally {
    configs.forEach((config, i) => ((config as { kernelFunc: tf.KernelFunc }).kernelFunc = originals[i]));
    backend.readSync = readSync;
    backend.read = read;
  }
  const wallMs = (performance.now() - start) / repeats;
  const kernels = [...times.entries()]
    .map(([kernel, t]) => ({ kernel, calls: t.calls / repeats, selfMs: t.selfMs / repeats, bytes: t.bytes / repeats }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return {
    wallMs,
    outsideKernelsMs: wallMs - kernels.reduce((sum, k) => sum + k.selfMs, 0),
    kernels,
    kernelCalls: kernels.reduce((n, k) => n + k.calls, 0),
    bytesAllocated: kernels.reduce((n, k) => n + k.bytes, 0),
    reads: reads / repeats,
  };
}

/** The profile as a table: the `top` slowest kernels, the rest summed, the time outside kernels. */
export function formatProfile(title: string, profile: StepProfile, top = 15): string {
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const rows = profile.kernels.slice(0, top).map((k) => [k.kernel, k.calls.toFixed(0), k.selfMs.toFixed(1), ((100 * k.selfMs) / profile.wallMs).toFixed(1), mb(k.bytes)]);
  const rest = profile.kernels.slice(top);
  if (rest.length > 0) {
    const ms = rest.reduce((sum, k) => sum + k.selfMs, 0);
    const bytes = rest.reduce((sum, k) => sum + k.bytes, 0);
    rows.push([`(${rest.length} other kernels)`, rest.reduce((n, k) => n + k.calls, 0).toFixed(0), ms.toFixed(1), ((100 * ms) / profile.wallMs).toFixed(1), mb(bytes)]);
  }
  rows.push(['(outside kernels)', '', profile.outsideKernelsMs.toFixed(1), ((100 * profile.outsideKernelsMs) / profile.wallMs).toFixed(1), '']);
  rows.push(['step', profile.kernelCalls.toFixed(0), profile.wallMs.toFixed(1), '100.0', mb(profile.bytesAllocated)]);
  const header = ['kernel', 'calls', 'ms', '%', 'MiB'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const reads = `reads of tensor data back to JavaScript: ${profile.reads.toFixed(0)} per step`;
  return [title, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), reads].join('\n');
}
