import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds the slowest files took in a full run on a busy two-core machine, for a run with no
 * record of its own (a fresh clone: CI). They spawn servers, browsers and harnesses, so their
 * size says nothing of their cost. A file not listed here and never run is placed by its size.
 */
const knownSeconds: Record<string, number> = {
  'test/web/dashboard.test.ts': 110,
  'test/ledger/model.property.test.ts': 150,
  'test/api/project-quotas.test.ts': 130,
  'test/processes/chaos.test.ts': 77,
  'examples/hosts/test/hosts.test.ts': 58,
  'test/api/fuzz.test.ts': 55,
  'test/web/quota-requests.test.ts': 45,
  'test/processes/cli-project-quotas.test.ts': 43,
  'test/processes/retries.test.ts': 39,
  'examples/instances/test/instances.test.ts': 35,
  'test/web/dashboard-scale.test.ts': 34,
  'test/processes/concurrency.test.ts': 33,
  'test/compat/identity.test.ts': 31,
  'test/web/subscriptions.test.ts': 30,
  'test/processes/cli-batch.test.ts': 28,
  'test/processes/controller.test.ts': 25,
};
/** A test file of the API's table kind takes about this long per byte of its source. */
const msPerByte = 0.4;

/**
 * The longest files start first, so that they run beside the short ones instead of ending the
 * run alone on one worker while the others idle. Vitest's own order does this only from its
 * results cache (node_modules/.vite), which a fresh clone has not got: it falls back to file
 * size, and the chaos test (4 KB, 77 s) would start last. Here a file's cost is its last
 * recorded duration, else the table above, else its size; a file that failed last time still
 * runs first, as in Vitest's order, for a quick answer while fixing it.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { cache, config } = this.ctx;
    const costOf = (spec: TestSpecification) => {
      const path = relative(config.root, spec.moduleId).replaceAll('\\', '/');
      const key = `${spec.project.name}:${path}`;
      const result = cache.getFileTestResults(key);
      const ms = result?.duration || (knownSeconds[path] ?? 0) * 1000 || (cache.getFileStats(key)?.size ?? 0) * msPerByte;
      return { failed: result?.failed ?? false, ms };
    };
    const costs = new Map(files.map((spec) => [spec, costOf(spec)]));
    return [...files].sort((a, b) => {
      const ca = costs.get(a)!;
      const cb = costs.get(b)!;
      return Number(cb.failed) - Number(ca.failed) || cb.ms - ca.ms;
    });
  }
}

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
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits for a page or a process to catch up with what a test did; its default
    // second is shorter than one page load on a loaded 2-core machine (a browser test failed so).
    expect: { poll: { timeout: 15_000 } },
    // The tests that run `allot` as a process run the built command: keep it fresh.
    globalSetup: ['./test/support/global-setup.ts'],
    reporters: [interactive ? 'default' : 'dot', './test/support/summary-reporter.ts'],
  },
});
