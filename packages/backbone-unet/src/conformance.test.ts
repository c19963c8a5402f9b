import { runConformanceSuite } from '@dropclass/core/conformance';
import { createUNet, unet } from './index.js';

runConformanceSuite({
  name: 'U-Net',
  createBackbone: (seed) => createUNet({ base: 4, depth: 2, seed }),
  inputSize: [16, 16],
  adapter: unet,
  adapterOptions: { base: 2, depth: 1 },
});
runConformanceSuite({
  name: 'U-Net (transposed-conv upsampling)',
  createBackbone: (seed) => createUNet({ base: 4, depth: 2, upsampling: 'transposed', seed }),
  inputSize: [8, 12],
});
