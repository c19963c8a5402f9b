import { runConformanceSuite } from '@dropclass/core/conformance';
import { createDeepLabV3 } from './deeplab.js';

runConformanceSuite({
  name: 'DeepLabV3-ResNet18 (output stride 16)',
  createBackbone: (seed) => createDeepLabV3({ layout: 'resnet18', width: 0.125, outputStride: 16, seed }),
  inputSize: [32, 48],
});
runConformanceSuite({
  name: 'DeepLabV3-ResNet18 (output stride 8)',
  createBackbone: (seed) => createDeepLabV3({ layout: 'resnet18', width: 0.125, outputStride: 8, seed }),
  inputSize: [32, 32],
});
