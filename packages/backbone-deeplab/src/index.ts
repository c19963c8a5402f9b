import { registerBackbone } from '@dropclass/core';
import { deeplabv3 } from './deeplab.js';

// Importing the package makes `deeplabv3` a backbone kind of run configs.
registerBackbone(deeplabv3);

export {
  createDeepLabV3,
  createResNetEncoder,
  deeplabv3,
  torchvisionWeightMap,
  type DeepLabConfig,
  type DeepLabOptions,
  type ResNetLayout,
  type ResNetOptions,
} from './deeplab.js';
export { AtrousConv2D, PaddedMaxPool2D, SpatialBroadcast, type AtrousConv2DConfig } from './layers.js';
