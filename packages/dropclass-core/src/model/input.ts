import type * as tf from '@tensorflow/tfjs-core';
import type { SegmentationBackbone } from '../adapter.js';

type BackboneShape = Pick<SegmentationBackbone, 'name' | 'inputChannels' | 'inputSizeMultiple' | 'minInputSize'>;

/** The size closest to `size` that is a multiple of `multiple` and at least `minimum`. */
export function nearestValidSize(size: number, multiple: number, minimum: number): number {
  const smallest = Math.ceil(minimum / multiple) * multiple;
  return Math.max(smallest, Math.round(size / multiple) * multiple);
}

/** Refuses an image batch the backbone cannot take, naming the size or channel count that would work. */
export function checkImages(backbone: BackboneShape, images: tf.Tensor): void {
  if (images.rank !== 4) {
    throw new Error(`images must be a 4-D tensor [batch, height, width, ${backbone.inputChannels}], got shape [${images.shape.join(', ')}]`);
  }
  const [, height, width, channels] = images.shape;
  if (channels !== backbone.inputChannels) {
    throw new Error(
      `images have ${channels} channels but the ${backbone.name} backbone takes ${backbone.inputChannels}: ` +
        `give [batch, height, width, ${backbone.inputChannels}] images or build the backbone with inputChannels: ${channels}`,
    );
  }
  const { inputSizeMultiple: multiple, minInputSize: minimum } = backbone;
  const fits = (s: number) => s % multiple === 0 && s >= minimum;
  if (!fits(height) || !fits(width)) {
    const h = nearestValidSize(height, multiple, minimum);
    const w = nearestValidSize(width, multiple, minimum);
    throw new Error(
      `input size ${height}x${width} cannot be taken by the ${backbone.name} backbone: height and width must be multiples of ` +
        `${multiple} and at least ${minimum}; the nearest size that works is ${h}x${w} (resize, crop or pad to it)`,
    );
  }
}

/** Refuses labels that do not cover the images pixel for pixel. */
export function checkLabels(images: tf.Tensor, labels: tf.Tensor): void {
  const [batch, height, width] = images.shape;
  if (labels.rank !== 3 || labels.shape[0] !== batch || labels.shape[1] !== height || labels.shape[2] !== width) {
    throw new Error(`labels must have shape [${batch}, ${height}, ${width}] to match the images, got [${labels.shape.join(', ')}]`);
  }
}
