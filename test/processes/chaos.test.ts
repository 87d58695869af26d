// Goal: allot keeps exact books while its server processes are SIGKILLed and restarted under a
// concurrent load — no overcommit at any journal revision, every acknowledged write present,
// every counter equal to its recount — and the harness that checks this can fail.
// Method: run the reliability harness (bench/chaos.ts, `npm run chaos`) briefly, on each
// engine: 8 s of random allocations, holds, quota changes and batches (independent and atomic)
// from concurrent clients over two `allot serve` processes on one PostgreSQL schema or one
// SQLite file, with a server killed every 2–4 s (during group commits) and the clients
// retrying unknown outcomes with their idempotency keys; it must exit 0 with a summary of 0
// violations after at least one kill.
// Then run it with a planted overcommit (--inject-fault overcommit, written with SQL after the
// load) and expect exit 1 naming the overcommit.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { engines } from '../support/engines.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function harness(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/chaos.ts', ...args], {
      cwd: root,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The harness stops its servers and drops its schema on SIGTERM.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const summary = /^chaos: (\d+) operations \((\d+) acknowledged, (\d+) denied, (\d+) retried\), (\d+) kills?, (\d+) database restarts?, (\d+) violations?$/m;

// Two server processes on one PostgreSQL schema, or on one SQLite file.
describe.each(engines)('the chaos harness on %s', (engine) => {
  it('finds no violation after killing servers under load', { timeout: 90_000 }, async () => {
    const run = await harness(['--quick', '--engine', engine, '--seconds', '8', '--servers', '2'], 85_000);
    const report = `exit ${run.code}\n${run.stdout}\n${run.stderr.slice(-3000)}`;
    expect(run.code, report).toBe(0);
    const match = summary.exec(run.stdout);
    expect(match, report).not.toBeNull();
    const [, operations, acknowledged, denied, , kills, , violations] = match!.map(Number);
    expect(violations, report).toBe(0);
    expect(kills, report).toBeGreaterThanOrEqual(1);
    expect(acknowledged, report).toBeGreaterThan(0);
    expect(denied, report).toBeGreaterThan(0);
    expect(operations, report).toBeGreaterThan(acknowledged!);
    // Batches were among the operations, and some were acknowledged.
    expect(run.stdout, report).toMatch(/acknowledged\/denied by operation: .*batch [1-9]\d*\/\d+/);
  });

  it('fails on a planted overcommit', { timeout: 90_000 }, async () => {
    const run = await harness(['--quick', '--engine', engine, '--seconds', '1', '--servers', '1', '--inject-fault', 'overcommit'], 85_000);
    const report = `exit ${run.code}\n${run.stdout}\n${run.stderr.slice(-3000)}`;
    expect(run.code, report).toBe(1);
    expect(run.stdout, report).toMatch(/^violation \[overcommit\] org-a revision \d+/m);
    expect(summary.exec(run.stdout)?.[7], report).not.toBe('0');
  });
});
