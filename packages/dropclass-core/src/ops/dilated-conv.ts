import * as tf from '@tensorflow/tfjs-core';
import { backendRegisters } from './fused-kernels.js';

/**
 * Name of the kernel a backend may register for the input gradient of {@link dilatedConv2d}: tfjs's
 * `Conv2DBackpropInput` (inputs `{ dy, filter }`) with a dilation, which tfjs's own gradient kernels
 * lack. Attributes {@link DilatedConvGradAttrs} with `inputShape`; output: the gradient of `x`.
 */
export const DILATED_CONV2D_INPUT_GRAD_KERNEL = 'DropClassDilatedConv2DBackpropInput';

/**
 * Name of the kernel a backend may register for the filter gradient of {@link dilatedConv2d}: tfjs's
 * `Conv2DBackpropFilter` (inputs `{ x, dy }`) with a dilation. Attributes {@link DilatedConvGradAttrs}
 * with `filterShape`; output: the gradient of the filter.
 */
export const DILATED_CONV2D_FILTER_GRAD_KERNEL = 'DropClassDilatedConv2DBackpropFilter';

/**
 * The attributes of the dilated gradient kernels: stride 1, 'same' padding, NHWC, the rate as
 * `dilations`, and the input's shape (input gradient) or the filter's (filter gradient).
 */
export type DilatedConvGradAttrs = { strides: 1; pad: 'same'; dataFormat: 'NHWC'; dilations: number } & ({ inputShape: number[] } | { filterShape: number[] });

/**
 * A 'same' convolution at stride 1 with dilation `rate` (atrous), NHWC, with its gradient on every
 * backend (tfjs's own gradient kernels take no dilation). Where the backend registers
 * {@link DILATED_CONV2D_INPUT_GRAD_KERNEL} and {@link DILATED_CONV2D_FILTER_GRAD_KERNEL}, the
 * convolution runs dilated and its gradients by those kernels; elsewhere it runs as space-to-batch:
 * the map cut into `rate x rate` interleaved blocks, padded to a multiple of the rate, each block
 * convolved undilated. Where the rate reaches the map's height and width, every tap but the centre
 * reads only padding, and it is the centre tap's 1x1 convolution.
 */
export function dilatedConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, rate: number): tf.Tensor4D {
  if (rate === 1) return tf.conv2d(x, filter, 1, 'same');
  const [kh, kw] = filter.shape;
  if (rate >= x.shape[1] && rate >= x.shape[2]) {
    return tf.tidy(() => tf.conv2d(x, tf.slice(filter, [(kh - 1) / 2, (kw - 1) / 2, 0, 0], [1, 1, -1, -1]) as tf.Tensor4D, 1, 'valid'));
  }
  if (backendRegisters(DILATED_CONV2D_INPUT_GRAD_KERNEL, DILATED_CONV2D_FILTER_GRAD_KERNEL)) return kernelDilatedConv2d(x, filter, rate);
  return tf.tidy(() => {
    // Zero rows and columns up to a multiple of the rate read as the conv's own zero padding.
    const padH = (rate - (x.shape[1] % rate)) % rate;
    const padW = (rate - (x.shape[2] % rate)) % rate;
    const blocks = tf.spaceToBatchND(x, [rate, rate], [[0, padH], [0, padW]]);
    return tf.batchToSpaceND(tf.conv2d(blocks as tf.Tensor4D, filter, 1, 'same'), [rate, rate], [[0, padH], [0, padW]]) as tf.Tensor4D;
  });
}

/** {@link dilatedConv2d} by the backend's dilated convolution and its gradient kernels. */
function kernelDilatedConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, rate: number): tf.Tensor4D {
  const conv = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, weights, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([input, weights]);
    return {
      value: tf.conv2d(input, weights, 1, 'same', 'NHWC', rate),
      gradFunc: (dy: tf.Tensor, [xs, w]: tf.Tensor[]) => {
        const attrs = (shape: { inputShape: number[] } | { filterShape: number[] }) =>
          ({ strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: rate, ...shape }) satisfies DilatedConvGradAttrs as unknown as tf.NamedAttrMap;
        return [
          tf.engine().runKernel(DILATED_CONV2D_INPUT_GRAD_KERNEL, { dy, filter: w }, attrs({ inputShape: xs.shape })) as tf.Tensor,
          tf.engine().runKernel(DILATED_CONV2D_FILTER_GRAD_KERNEL, { x: xs, dy }, attrs({ filterShape: w.shape })) as tf.Tensor,
        ];
      },
    };
  });
  return conv(x, filter) as tf.Tensor4D;
}
