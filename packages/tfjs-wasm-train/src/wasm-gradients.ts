import * as tf from '@tensorflow/tfjs-core';
import { conv2dFilterGradient, conv2dInputGradient, depthwiseFilterGradient, depthwiseInputGradient } from './conv-gradients.js';
import { type KernelOverride, OVERRIDE_PRIORITY, baseKernel, registerKernelOverrides } from './kernel-overrides.js';
import { fastMatMul, fastReduction, matMulApplies, maxPoolGrad, maxPoolGradApplies, pair, reductionApplies } from './wasm-fast-ops.js';

type Pair = [number, number];
/**
 * The attributes of the four convolution gradient kernels. tfjs's typings of the conv2d ones omit
 * `dilations`, which `runKernel` callers may pass (the depthwise ones declare it); the data format
 * is only declared for conv2d.
 */
type ConvGradientAttrs = (
  | tf.Conv2DBackpropFilterAttrs
  | tf.Conv2DBackpropInputAttrs
  | tf.DepthwiseConv2dNativeBackpropFilterAttrs
  | tf.DepthwiseConv2dNativeBackpropInputAttrs
) & { dilations?: number | Pair; dataFormat?: 'NHWC' | 'NCHW'; filterShape?: number[]; inputShape?: number[] };
type ConvInfo = { strides: Pair; dilations: Pair; pad: { top: number; left: number } };
/** A composite of tfjs ops over a kernel's inputs. */
type Compute = (inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap) => tf.Tensor;

/** Adds a reference to a tensor's data on the backend, so that one more tensor may hold it. */
const share = (backend: unknown, info: tf.TensorInfo) => (backend as tf.KernelBackend).incRef(info.dataId);

/**
 * Runs a composite of tfjs ops as a wasm kernel: wraps the inputs as tensors (each wrapper holds a
 * reference of its own, so disposing it leaves the caller's input intact), disposes the wrappers.
 */
function kernel(kernelName: string, compute: Compute): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const engine = tf.engine();
      const wrapped = Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => {
          share(backend, v as tf.TensorInfo);
          return [k, engine.makeTensorFromTensorInfo(v as tf.TensorInfo)];
        }),
      );
      try {
        return compute(wrapped, attrs ?? {}) as unknown as tf.TensorInfo;
      } finally {
        tf.dispose(Object.values(wrapped));
      }
    },
  };
}

/** A convolution gradient as a composite, given the convolution's geometry. */
function convCompute(kernelName: string, depthwise: boolean, compute: (inputs: Record<string, tf.Tensor4D>, attrs: ConvGradientAttrs, info: ConvInfo) => tf.Tensor4D): Compute {
  return (inputs, attrMap) => {
    const a = attrMap as unknown as ConvGradientAttrs;
    if (a.dataFormat === 'NCHW') throw new Error(`${kernelName} on wasm supports NHWC only`);
    const tensors = inputs as Record<string, tf.Tensor4D>;
    const inShape = (a.inputShape ?? tensors.x.shape) as [number, number, number, number];
    const filterShape = (a.filterShape ?? tensors.filter.shape) as [number, number, number, number];
    const conv = tf.backend_util.computeConv2DInfo(inShape, filterShape, pair(a.strides), pair(a.dilations), a.pad, a.dimRoundingMode, depthwise);
    return compute(tensors, a, { strides: [conv.strideHeight, conv.strideWidth], dilations: [conv.dilationHeight, conv.dilationWidth], pad: conv.padInfo });
  };
}

/** Kernels stock tfjs-backend-wasm lacks for training conv nets, as composites of kernels it has. */
export const WASM_GRADIENT_KERNELS: tf.KernelConfig[] = [
  kernel(tf.Conv2DBackpropFilter, convCompute(tf.Conv2DBackpropFilter, false, ({ x, dy }, a, c) => conv2dFilterGradient(x, dy, a.filterShape!, c.strides, c.dilations, c.pad))),
  kernel(
    tf.DepthwiseConv2dNativeBackpropFilter,
    convCompute(tf.DepthwiseConv2dNativeBackpropFilter, true, ({ x, dy }, a, c) => depthwiseFilterGradient(x, dy, a.filterShape!, c.strides, c.dilations, c.pad)),
  ),
  kernel(
    tf.DepthwiseConv2dNativeBackpropInput,
    convCompute(tf.DepthwiseConv2dNativeBackpropInput, true, ({ dy, filter }, a, c) => depthwiseInputGradient(dy, filter, a.inputShape!, c.strides, c.dilations, c.pad)),
  ),
];

const composite = (kernelName: string, compute: Compute) => kernel(kernelName, compute).kernelFunc;

/** Who registers this package's overrides (`KernelOverride.source`). */
export const OVERRIDE_SOURCE = '@dropclass/tfjs-wasm-train';

/** A wasm kernel override of this package at the given priority. */
function override(kernelName: string, priority: number, run: KernelOverride['run']): KernelOverride {
  return { kernelName, backendName: 'wasm', source: OVERRIDE_SOURCE, priority, run };
}

/** The attributes of a call that has none (one object for every such call). */
const NO_ATTRS: tf.NamedAttrMap = Object.freeze({});

/** Runs `kernelFunc` for the calls `applies` takes, and declines the others. */
function when(applies: (inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => boolean, kernelFunc: tf.KernelFunc): KernelOverride['run'] {
  return (call) => (applies(call.inputs, call.attrs ?? NO_ATTRS) ? kernelFunc(call) : undefined);
}

/** Kernels wasm has but runs slowly where training needs them, and what replaces them (for the calls each takes). */
const FASTER_KERNELS: KernelOverride[] = [
  // wasm's Conv2DBackpropInput is a plain loop; as a forward conv it runs through XNNPACK.
  override(
    tf.Conv2DBackpropInput,
    OVERRIDE_PRIORITY.faster,
    composite(
      tf.Conv2DBackpropInput,
      convCompute(tf.Conv2DBackpropInput, false, ({ dy, filter }, a, c) => conv2dInputGradient(dy, filter, a.inputShape!, c.strides, c.dilations, c.pad)),
    ),
  ),
  override(tf.BatchMatMul, OVERRIDE_PRIORITY.faster, when(({ a, b }, attrs) => matMulApplies(a!, b!, attrs), composite(tf.BatchMatMul, ({ a, b }, attrs) => fastMatMul(a, b, attrs)))),
  override(tf.Sum, OVERRIDE_PRIORITY.faster, when(({ x }, attrs) => reductionApplies(x!, attrs), composite(tf.Sum, ({ x }, attrs) => fastReduction(x, attrs, 'sum')))),
  override(tf.Mean, OVERRIDE_PRIORITY.faster, when(({ x }, attrs) => reductionApplies(x!, attrs), composite(tf.Mean, ({ x }, attrs) => fastReduction(x, attrs, 'mean')))),
  override(
    tf.MaxPoolGrad,
    OVERRIDE_PRIORITY.faster,
    when(({ input }, attrs) => maxPoolGradApplies(input!, attrs), composite(tf.MaxPoolGrad, ({ dy, input, output }, attrs) => maxPoolGrad(dy, input, output, attrs))),
  ),
  // wasm's Identity copies the data, and the engine clones every tensor a gradient needs. No kernel
  // writes into an existing tensor, so the clone can share the data, as on the cpu backend.
  override(
    tf.Identity,
    OVERRIDE_PRIORITY.faster,
    when(
      ({ x }) => x!.dtype !== 'string',
      ({ inputs, backend }) => {
        const x = inputs.x as tf.TensorInfo;
        share(backend, x);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      },
    ),
  ),
];

let replaced: Map<string, tf.KernelConfig | undefined> | undefined;

/**
 * Registers, for the wasm backend, the gradient kernels it lacks and faster versions of the kernels
 * it runs slowly in training, as kernel overrides (`registerKernelOverrides`): the gradient kernels
 * at `OVERRIDE_PRIORITY.composite`, only where wasm has no kernel of that name, the faster ones at
 * `OVERRIDE_PRIORITY.faster`, in front of wasm's own for the calls they take. Idempotent (after
 * `unregisterKernelOverrides(OVERRIDE_SOURCE)`, registers them again). Returns the stock kernels
 * the faster ones go in front of, by name (for comparisons).
 */
export function registerWasmGradientKernels(): Map<string, tf.KernelConfig | undefined> {
  // Registering them again only replaces them by themselves: tfjs's registry does not change.
  registerKernelOverrides(
    WASM_GRADIENT_KERNELS.filter((config) => !baseKernel(config.kernelName, 'wasm')).map((config) => override(config.kernelName, OVERRIDE_PRIORITY.composite, config.kernelFunc as KernelOverride['run'])),
  );
  registerKernelOverrides(FASTER_KERNELS);
  replaced ??= new Map(FASTER_KERNELS.map(({ kernelName }) => [kernelName, baseKernel(kernelName, 'wasm')]));
  return replaced;
}
