import { runConformanceSuite } from '@dropclass/core/conformance';
import { createDeepLabV3, deeplabv3 } from './index.js';

runConformanceSuite({
  name: 'DeepLabV3-ResNet18 (output stride 16)',
  createBackbone: (seed) => createDeepLabV3({ layout: 'resnet18', width: 0.125, outputStride: 16, seed }),
  inputSize: [32, 48],
  adapter: deeplabv3,
  adapterOptions: { width: 0.125 },
});
runConformanceSuite({
  name: 'DeepLabV3-ResNet18 (output stride 8)',
  createBackbone: (seed) => createDeepLabV3({ layout: 'resnet18', width: 0.125, outputStride: 8, seed }),
  inputSize: [32, 32],
});
