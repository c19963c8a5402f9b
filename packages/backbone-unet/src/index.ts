import { registerBackbone } from '@dropclass/core';
import { unet } from './unet.js';

// Importing the package makes `unet` a backbone kind of run configs (no tfjs state is touched).
registerBackbone(unet);

export { createUNet, unet, unetParameterCount, type UNetConfig, type UNetOptions } from './unet.js';
