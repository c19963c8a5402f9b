import { registerBackbone } from '@dropclass/core';
import { plainFcn } from './plain-fcn.js';

// Importing the package registers the backbone, so that a run config can name it:
// "backbone": { "package": "@dropclass/example-custom-backbone", "kind": "plain-fcn", "options": { ... } }
registerBackbone(plainFcn);

export { LayerScale, createPlainFcn, plainFcn, type PlainFcnConfig, type PlainFcnOptions } from './plain-fcn.js';
