import * as tf from '@tensorflow/tfjs-core';
import { sgdUpdate } from '../ops/sgd-update.js';

/** Options of the optimizer: SGD with momentum and weight decay, as PyTorch's `torch.optim.SGD`. */
export interface SgdOptions {
  /** Default 0.9 (SPEC section 5). */
  momentum?: number;
  /** L2 weight decay added to every gradient; default 5e-4 (SPEC section 5). */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with momentum and weight decay, as PyTorch's `torch.optim.SGD`:
 * `g = grad + wd * w; v = m * v + g; w -= lr * v`. The learning rate is given per step so that
 * a schedule (poly decay) needs no optimizer state of its own.
 */
export class Sgd {
  readonly momentum: number;
  readonly weightDecay: number;
  private velocity = new Map<string, tf.Variable>();

  constructor(options: SgdOptions = {}) {
    this.momentum = options.momentum ?? 0.9;
    this.weightDecay = options.weightDecay ?? 5e-4;
  }

  /**
   * Updates each parameter from its gradient. `key` names the parameter stably across save and load
   * (tfjs variable names are made unique per process, so they are not used). `learningRateScale`
   * multiplies the learning rate of one parameter (default 1), as a PyTorch parameter group's `lr`.
   */
  step(parameters: { key: string; variable: tf.Variable; gradient: tf.Tensor; learningRateScale?: number }[], learningRate: number): void {
    for (const { key, variable, gradient, learningRateScale = 1 } of parameters) {
      const previous = this.velocity.get(key);
      const next = sgdUpdate(variable, gradient, previous, { learningRate: learningRate * learningRateScale, momentum: this.momentum, weightDecay: this.weightDecay });
      variable.assign(next.weight);
      // Without momentum there is no velocity to keep.
      if (this.momentum !== 0) {
        if (previous) previous.assign(next.velocity);
        else this.velocity.set(key, tf.variable(next.velocity, false));
      }
      tf.dispose([next.weight, next.velocity]);
    }
  }

  /** Momentum buffers by parameter key, for a checkpoint. */
  getState(): tf.NamedTensorMap {
    return Object.fromEntries(this.velocity.entries());
  }

  /** Restores momentum buffers saved by `getState` (copies them; the caller keeps its tensors). */
  setState(state: tf.NamedTensorMap): void {
    this.dispose();
    for (const [key, value] of Object.entries(state)) {
      this.velocity.set(key, tf.variable(value, false));
    }
  }

  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
  }
}

/** Poly learning-rate decay: `base * (1 - step / total) ^ power` (SPEC section 5: power 0.9). */
export function polyLearningRate(base: number, step: number, totalSteps: number, power = 0.9): number {
  return base * Math.pow(Math.max(0, 1 - step / totalSteps), power);
}
