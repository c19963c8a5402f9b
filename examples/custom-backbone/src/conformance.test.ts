import { runConformanceSuite } from '@dropclass/core/conformance';
import { createPlainFcn, plainFcn } from './index.js';

runConformanceSuite({
  name: 'plain FCN (examples/custom-backbone)',
  createBackbone: (seed) => createPlainFcn({ width: 6, layers: 2, seed }),
  inputSize: [12, 16],
  adapter: plainFcn,
  adapterOptions: { width: 6, layers: 2 },
});
