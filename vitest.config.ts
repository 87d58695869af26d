import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // Files share one PostgreSQL server, each in its own schema. Three workers on 2 cores: many
    // files spend much of their time waiting (on servers, browsers, expiries), and a third
    // worker fills those waits (the suite took 325 s with two, 278 s with three).
    pool: 'forks',
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The tests that run `allot` as a process run the built command: keep it fresh.
    globalSetup: ['./test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
