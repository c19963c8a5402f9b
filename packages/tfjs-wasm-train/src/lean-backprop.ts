import * as tf from '@tensorflow/tfjs-core';
import semver from 'semver';

/**
 * The tfjs-core versions whose engine internals the lean backward pass was written and tested
 * against (the tape node's `gradient` and `saved`, `addTapeNode`, `gradients`, `state`): any other
 * version keeps tfjs's own backward pass.
 */
export const LEAN_BACKPROP_VERSIONS = '>=4.22.0 <4.23.0';

/** The part of tfjs-core's engine the lean backward pass reaches into (none of it public API). */
interface TapeNode {
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode(...args: unknown[]): void;
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): unknown;
}

const INSTALLED = Symbol.for('dropclass.leanBackprop');

/**
 * Makes tfjs's backward pass free memory as it goes, as PyTorch's autograd does. tfjs keeps every
 * gradient it computes and every tensor the forward pass saved until the whole backward pass ends,
 * so a training step's peak holds the activations and their gradients together. Here, once a tape
 * node's gradients have been computed, the gradients flowing into it (its outputs' `dy`, which
 * nothing else reads) and the tensors its forward saved (clones that only its gradient reads) are
 * disposed. Values are unchanged: only when tensors are freed changes.
 *
 * It keeps a `dy` that a gradient function handed on as an input's gradient (the same tensor), the
 * `dy` the caller gave `tf.grads`, and everything of higher-order gradients (a backward pass that is
 * itself taped). Idempotent; returns whether it is active (false on other tfjs-core versions).
 */
export function installLeanBackprop(engine = tf.engine() as unknown as EngineInternals): boolean {
  const host = engine as unknown as Record<symbol, boolean>;
  if (host[INSTALLED]) return true;
  if (!semver.satisfies(tf.version_core, LEAN_BACKPROP_VERSIONS)) return false;
  const stock = { addTapeNode: engine.addTapeNode, gradients: engine.gradients };
  if (typeof stock.addTapeNode !== 'function' || typeof stock.gradients !== 'function') return false;

  const callerDys: (tf.Tensor | undefined)[] = [];
  // The node whose gradient ran last: freed when the next one starts (by then every input
  // gradient of it has been computed and accumulated), or by tfjs at the end of the pass.
  let finished: { dys: (tf.Tensor | null)[]; saved: tf.Tensor[]; handedOn: Set<tf.Tensor> } | undefined;
  const free = () => {
    if (!finished) return;
    const { dys, saved, handedOn } = finished;
    finished = undefined;
    for (const dy of dys) if (dy && !dy.isDisposed && !handedOn.has(dy) && !callerDys.includes(dy)) dy.dispose();
    for (const t of saved) if (!t.isDisposed) t.dispose();
  };

  engine.gradients = function (this: EngineInternals, f, xs, dy, allowNoGradients) {
    callerDys.push(dy);
    try {
      return stock.gradients.call(this, f, xs, dy, allowNoGradients);
    } finally {
      finished = undefined;
      callerDys.pop();
    }
  };
  engine.addTapeNode = function (this: EngineInternals, ...args: unknown[]) {
    stock.addTapeNode.apply(this, args);
    const tape = this.state.activeTape;
    const node = tape?.[tape.length - 1];
    const gradient = node?.gradient;
    if (!node || !gradient) return;
    node.gradient = (dys) => {
      // A taped backward pass (higher-order gradients) keeps everything, as tfjs does.
      if (this.state.gradientDepth > 0) return gradient(dys);
      free();
      const thunks = gradient(dys);
      const handedOn = new Set<tf.Tensor>();
      finished = { dys, saved: node.saved ?? [], handedOn };
      return Object.fromEntries(
        Object.entries(thunks).map(([input, thunk]) => [
          input,
          () => {
            const dx = thunk();
            handedOn.add(dx);
            return dx;
          },
        ]),
      );
    };
  };
  host[INSTALLED] = true;
  return true;
}
