import { defineConfig } from 'vitest/config';

// Only the Keyv and cache-manager suites run under vitest (@keyv/test-suite is written for it);
// the package's own tests use node:test (test/*.test.js).
export default defineConfig({
  test: {
    include: ['test/vitest/**/*.test.mjs'],
    fileParallelism: false,
    testTimeout: 20000,
    hookTimeout: 30000,
    reporters: ['default'],
  },
});
