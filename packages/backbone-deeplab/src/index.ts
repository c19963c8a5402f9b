export { createDeepLabV3, deeplabv3, type DeepLabOptions, type ResNetLayout } from './deeplab.js';
export { AtrousConv2D, SpatialBroadcast, type AtrousConv2DConfig } from './layers.js';
