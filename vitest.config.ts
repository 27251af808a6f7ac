import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Builds whisper-server (cached) and generates the tiny random-weight model once per run.
    globalSetup: ['./test/support/global-setup.ts'],
    // Integration suites start real daemons (rtpengine) on loopback; give them room on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
