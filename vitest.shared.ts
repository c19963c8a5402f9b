import { defineProject } from 'vitest/config';

/** Settings every package's tests share: node environment, forked workers, generous timeouts for wasm. */
export const sharedTestConfig = defineProject({
  test: {
    environment: 'node',
    pool: 'forks',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
