import { defineConfig } from 'vitest/config';

/** `npm run test:live`: the warehouse contract against real accounts (see README). */
export default defineConfig({
  test: { include: ['test/live/**/*.test.ts'], testTimeout: 600_000, hookTimeout: 600_000, pool: 'forks' },
});
