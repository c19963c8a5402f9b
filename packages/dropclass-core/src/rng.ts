/**
 * `@dropclass/core/rng`: the seeded generator the model draws the class to drop with, for packages
 * whose draws must be reproducible in the same way (the datasets' shuffling and augmentation).
 * Backbones need only {@link layerSeed}, which the main entry exports too.
 *
 * @module
 */

/**
 * A small seeded generator (mulberry32) whose whole state is one integer, so a checkpoint can store
 * it and a resumed run draws the same classes to drop as an uninterrupted one.
 */
export class Rng {
  private state: number;

  /** A generator seeded with `seed` (read as an unsigned 32-bit integer). */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** The whole state: one unsigned 32-bit integer, for a checkpoint. */
  getState(): number {
    return this.state;
  }

  /** Restores a state from `getState`: the draws continue as they would have. */
  setState(state: number): void {
    this.state = state >>> 0;
  }
}

/**
 * The seed of the `index`-th initialiser of a model seeded with `seed`: distinct per layer, and never
 * 0, which tfjs reads as "no seed" (it then draws from Math.random).
 */
export function layerSeed(seed: number, index: number): number {
  return ((seed >>> 0) * 7919 + index + 1) >>> 0 || 1;
}
