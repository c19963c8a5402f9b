export { createUNet, unet, unetParameterCount, type UNetOptions } from './unet.js';
