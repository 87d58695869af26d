/**
 * Prints the closing line CI reads: "N passed, N failed" (and skipped, which CI must keep at 0).
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  private line = '';

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
    this.line = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
  }

  /** Runs after the default reporter's summary, so this is the closing line. */
  onFinished(): void {
    setImmediate(() => process.stdout.write(`${this.line}\n`));
  }
}
