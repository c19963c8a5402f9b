import * as tf from '@tensorflow/tfjs-core';
import { conv2dFilterGradient, conv2dInputGradient, depthwiseFilterGradient, depthwiseInputGradient } from './conv-gradients.js';
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

interface Replacement {
  kernelName: string;
  /** Which calls it takes; the others stay with the stock kernel. All when absent. */
  applies?: (inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => boolean;
  kernelFunc: tf.KernelFunc;
}

const composite = (kernelName: string, compute: Compute) => kernel(kernelName, compute).kernelFunc;

/** Kernels wasm has but runs slowly where training needs them, and what replaces them. */
const FASTER_KERNELS: Replacement[] = [
  // wasm's Conv2DBackpropInput is a plain loop; as a forward conv it runs through XNNPACK.
  {
    kernelName: tf.Conv2DBackpropInput,
    kernelFunc: composite(
      tf.Conv2DBackpropInput,
      convCompute(tf.Conv2DBackpropInput, false, ({ dy, filter }, a, c) => conv2dInputGradient(dy, filter, a.inputShape!, c.strides, c.dilations, c.pad)),
    ),
  },
  { kernelName: tf.BatchMatMul, applies: ({ a, b }, attrs) => matMulApplies(a!, b!, attrs), kernelFunc: composite(tf.BatchMatMul, ({ a, b }, attrs) => fastMatMul(a, b, attrs)) },
  { kernelName: tf.Sum, applies: ({ x }, attrs) => reductionApplies(x!, attrs), kernelFunc: composite(tf.Sum, ({ x }, attrs) => fastReduction(x, attrs, 'sum')) },
  { kernelName: tf.Mean, applies: ({ x }, attrs) => reductionApplies(x!, attrs), kernelFunc: composite(tf.Mean, ({ x }, attrs) => fastReduction(x, attrs, 'mean')) },
  {
    kernelName: tf.MaxPoolGrad,
    applies: ({ input }, attrs) => maxPoolGradApplies(input!, attrs),
    kernelFunc: composite(tf.MaxPoolGrad, ({ dy, input, output }, attrs) => maxPoolGrad(dy, input, output, attrs)),
  },
  // wasm's Identity copies the data, and the engine clones every tensor a gradient needs. No kernel
  // writes into an existing tensor, so the clone can share the data, as on the cpu backend.
  {
    kernelName: tf.Identity,
    applies: ({ x }) => x!.dtype !== 'string',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      share(backend, x);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  },
];

/** Replaces a stock wasm kernel for the calls the replacement applies to. Returns the stock kernel. */
function replace({ kernelName, applies, kernelFunc }: Replacement): tf.KernelConfig | undefined {
  const stock = tf.getKernel(kernelName, 'wasm');
  if (stock) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    // The stock kernel still binds its wasm function when the backend starts.
    setupFunc: stock?.setupFunc,
    kernelFunc: (args) => (!stock || !applies || applies(args.inputs, args.attrs ?? {}) ? kernelFunc(args) : stock.kernelFunc(args)),
  });
  return stock;
}

let replaced: Map<string, tf.KernelConfig | undefined> | undefined;

/**
 * Registers, for the wasm backend, the gradient kernels it lacks and faster versions of the kernels
 * it runs slowly in training. Idempotent. Returns the stock kernels it replaced, by name (for comparisons).
 */
export function registerWasmGradientKernels(): Map<string, tf.KernelConfig | undefined> {
  if (replaced) return replaced;
  for (const config of WASM_GRADIENT_KERNELS) {
    if (!tf.getKernel(config.kernelName, 'wasm')) tf.registerKernel(config);
  }
  replaced = new Map(FASTER_KERNELS.map((replacement) => [replacement.kernelName, replace(replacement)]));
  return replaced;
}
