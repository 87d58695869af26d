/**
 * Prints the slowest test files (where the run's time went, which the dot reporter used in CI
 * does not show), then the closing line CI reads: "N passed, N failed" (and skipped, which CI
 * must keep at 0).
 */
import { relative } from 'node:path';
import type { Reporter, TestModule, Vitest } from 'vitest/node';

/** How many of the slowest files to name. */
const slowestShown = 8;

export default class SummaryReporter implements Reporter {
  private root = process.cwd();
  private text = '';

  onInit(vitest: Vitest): void {
    this.root = vitest.config.root;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else skipped += 1;
      }
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) failed += 1;
    }
    // An unhandled error fails the run even when every test passed: count it as a failure.
    failed += unhandledErrors.length;
    const slowest = testModules
      .map((module) => ({ path: relative(this.root, module.moduleId), ms: module.diagnostic().duration }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, slowestShown)
      .map(({ path, ms }) => `${(ms / 1000).toFixed(1).padStart(7)} s  ${path}`);
    // One write: the main process also answers the workers, so it prints little and at once.
    this.text = [
      ...(slowest.length ? ['Slowest files (their tests and hooks):', ...slowest, ''] : []),
      `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`,
      '',
    ].join('\n');
  }

  /** Runs after the default reporter's summary, so this is the closing line. */
  onFinished(): void {
    setImmediate(() => process.stdout.write(this.text));
  }
}
