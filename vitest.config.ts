import { defineConfig } from 'vitest/config';

// Where output goes to a file or a pipe (CI), the dot reporter: the main process answers every
// worker's calls (an unanswered onTaskUpdate fails the run after 60 s), and each line a
// reporter prints to a pipe is written synchronously by that main thread. The summary reporter
// names the slowest files, so a log still says where the time went.
const interactive = Boolean(process.stdout.isTTY) && !process.env.CI;

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
    reporters: [interactive ? 'default' : 'dot', './test/support/summary-reporter.ts'],
  },
});
