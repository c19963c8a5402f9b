import { mergeConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.js';

// The kernel tests check this package's own wasm kernels: the native ones, which would take their
// place, are left out (DROPCLASS_NATIVE=0); @dropclass/native-kernels tests them on this backend.
export default mergeConfig(sharedTestConfig, { test: { env: { DROPCLASS_NATIVE: '0' } } });
