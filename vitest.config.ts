import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Live warehouse accounts: only `npm run test:live` (vitest.live.config.ts).
    exclude: ['test/live/**', '**/node_modules/**'],
    // Own HOME/XDG_STATE_HOME for the run; fails the suite if the real state dir was written.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
