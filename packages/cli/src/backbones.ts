import type { SegmentationBackbone } from '@dropclass/core';
import { createDeepLabV3 } from '@dropclass/backbone-deeplab';
import { createUNet } from '@dropclass/backbone-unet';
import type { RunConfig } from './config.js';

/** Builds the backbone a run config names; importing the adapters also registers their custom layers for loading. */
export function createBackbone(config: RunConfig['backbone'], seed: number): SegmentationBackbone {
  switch (config.kind) {
    case 'unet':
      return createUNet({ ...config.options, seed });
    case 'deeplabv3':
      return createDeepLabV3({ ...config.options, seed });
  }
}
