import * as tf from '@tensorflow/tfjs-core';
import { conv2dFilterGradient, conv2dInputGradient, depthwiseFilterGradient, depthwiseInputGradient } from './conv-gradients.js';

type Pair = [number, number];
type Attrs = {
  strides: number | Pair;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dilations?: number | Pair;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NHWC' | 'NCHW';
  filterShape?: number[];
  inputShape?: number[];
};

const pair = (v: number | Pair | undefined): Pair => (v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v);

/** Runs a composite of tfjs ops as a kernel: wraps the inputs as tensors, disposes the wrappers. */
function composite(
  kernelName: string,
  depthwise: boolean,
  compute: (inputs: Record<string, tf.Tensor4D>, attrs: Attrs, info: { strides: Pair; dilations: Pair; pad: { top: number; left: number } }) => tf.Tensor4D,
): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as Attrs;
      if (a.dataFormat === 'NCHW') throw new Error(`${kernelName} on wasm supports NHWC only`);
      const engine = tf.engine();
      // Each wrapper holds a reference of its own, so disposing it leaves the caller's input intact.
      const wrapped = Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => {
          (backend as unknown as { incRef(id: tf.DataId): void }).incRef((v as tf.TensorInfo).dataId);
          return [k, engine.makeTensorFromTensorInfo(v as tf.TensorInfo) as tf.Tensor4D];
        }),
      );
      try {
        const inShape = (a.inputShape ?? wrapped.x.shape) as [number, number, number, number];
        const filterShape = (a.filterShape ?? wrapped.filter.shape) as [number, number, number, number];
        const conv = tf.backend_util.computeConv2DInfo(inShape, filterShape, pair(a.strides), pair(a.dilations), a.pad, a.dimRoundingMode, depthwise);
        return compute(wrapped, a, { strides: [conv.strideHeight, conv.strideWidth], dilations: [conv.dilationHeight, conv.dilationWidth], pad: conv.padInfo }) as unknown as tf.TensorInfo;
      } finally {
        tf.dispose(Object.values(wrapped));
      }
    },
  };
}

/** Kernels stock tfjs-backend-wasm lacks for training conv nets, as composites of kernels it has. */
export const WASM_GRADIENT_KERNELS: tf.KernelConfig[] = [
  composite('Conv2DBackpropFilter', false, ({ x, dy }, a, c) => conv2dFilterGradient(x, dy, a.filterShape!, c.strides, c.dilations, c.pad)),
  composite('DepthwiseConv2dNativeBackpropFilter', true, ({ x, dy }, a, c) => depthwiseFilterGradient(x, dy, a.filterShape!, c.strides, c.dilations, c.pad)),
  composite('DepthwiseConv2dNativeBackpropInput', true, ({ dy, filter }, a, c) => depthwiseInputGradient(dy, filter, a.inputShape!, c.strides, c.dilations, c.pad)),
];

/** Conv2DBackpropInput as a forward conv (XNNPACK) instead of wasm's plain loop. */
export const FAST_CONV2D_BACKPROP_INPUT: tf.KernelConfig = composite('Conv2DBackpropInput', false, ({ dy, filter }, a, c) =>
  conv2dInputGradient(dy, filter, a.inputShape!, c.strides, c.dilations, c.pad),
);

let registered = false;

/**
 * Registers, for the wasm backend, the gradient kernels it lacks and a faster Conv2DBackpropInput.
 * Idempotent. Returns the stock Conv2DBackpropInput kernel it replaced (for comparisons).
 */
export function registerWasmGradientKernels(): tf.KernelConfig | undefined {
  if (registered) return stockConv2DBackpropInput;
  for (const config of WASM_GRADIENT_KERNELS) {
    if (!tf.getKernel(config.kernelName, 'wasm')) tf.registerKernel(config);
  }
  stockConv2DBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (stockConv2DBackpropInput) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel(FAST_CONV2D_BACKPROP_INPUT);
  registered = true;
  return stockConv2DBackpropInput;
}

let stockConv2DBackpropInput: tf.KernelConfig | undefined;
