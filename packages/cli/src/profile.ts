import * as tf from '@tensorflow/tfjs-core';

export interface KernelTime {
  kernel: string;
  calls: number;
  /** Time in the kernel itself, without the kernels it runs (a composite kernel runs others). */
  selfMs: number;
}

export interface StepProfile {
  /** Wall time of the profiled calls, divided by `repeats`. */
  wallMs: number;
  /** Wall time outside every kernel: the engine's bookkeeping, the JavaScript between kernels, garbage collection. */
  outsideKernelsMs: number;
  /** Per kernel, slowest first; figures are per call of `run`. */
  kernels: KernelTime[];
}

/**
 * Times every kernel of the current backend while `run` is called `repeats` times. The kernel
 * functions in tfjs's registry are wrapped for the duration (and restored after), so that nested
 * kernels are attributed to themselves, not to the composite that called them.
 */
export function profileKernels(run: () => void, repeats = 1): StepProfile {
  const configs = tf.getKernelsForBackend(tf.getBackend());
  const times = new Map<string, { calls: number; selfMs: number }>();
  const childTime: number[] = [];
  const originals = configs.map((config) => config.kernelFunc);
  for (const config of configs) {
    const original = config.kernelFunc;
    (config as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      childTime.push(0);
      const start = performance.now();
      try {
        return original(args);
      } finally {
        const elapsed = performance.now() - start;
        const self = elapsed - childTime.pop()!;
        if (childTime.length > 0) childTime[childTime.length - 1] += elapsed;
        const entry = times.get(config.kernelName) ?? { calls: 0, selfMs: 0 };
        entry.calls += 1;
        entry.selfMs += self;
        times.set(config.kernelName, entry);
      }
    };
  }
  const start = performance.now();
  try {
    for (let i = 0; i < repeats; i++) run();
  } finally {
    configs.forEach((config, i) => ((config as { kernelFunc: tf.KernelFunc }).kernelFunc = originals[i]));
  }
  const wallMs = (performance.now() - start) / repeats;
  const kernels = [...times.entries()]
    .map(([kernel, t]) => ({ kernel, calls: t.calls / repeats, selfMs: t.selfMs / repeats }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { wallMs, outsideKernelsMs: wallMs - kernels.reduce((sum, k) => sum + k.selfMs, 0), kernels };
}

/** The profile as a table: the `top` slowest kernels, the rest summed, the time outside kernels. */
export function formatProfile(title: string, profile: StepProfile, top = 15): string {
  const rows = profile.kernels.slice(0, top).map((k) => [k.kernel, k.calls.toFixed(0), k.selfMs.toFixed(1), ((100 * k.selfMs) / profile.wallMs).toFixed(1)]);
  const rest = profile.kernels.slice(top);
  if (rest.length > 0) {
    const ms = rest.reduce((sum, k) => sum + k.selfMs, 0);
    rows.push([`(${rest.length} other kernels)`, rest.reduce((n, k) => n + k.calls, 0).toFixed(0), ms.toFixed(1), ((100 * ms) / profile.wallMs).toFixed(1)]);
  }
  rows.push(['(outside kernels)', '', profile.outsideKernelsMs.toFixed(1), ((100 * profile.outsideKernelsMs) / profile.wallMs).toFixed(1)]);
  rows.push(['step', '', profile.wallMs.toFixed(1), '100.0']);
  const header = ['kernel', 'calls', 'ms', '%'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [title, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
