// Goal: a host process killed in the middle of a limits transaction leaves nothing behind: its
// rows are not there, the tracker still equals the row count, the mixin's own bookkeeping
// (its deltas) is clean, and the next host works normally.
// Method: on each engine (SQLite: a file database), the test sets a limit and creates two rows,
// then spawns test/limits/crash-host.ts (node --import tsx, as test/support/server.ts starts
// allot) which starts mixin.transaction, inserts three rows, prints a marker and waits forever —
// either inside the host's work or right after the mixin applied the deltas to the tracker
// (before COMMIT). While it waits, the test reads (without writing) that nothing of it
// is visible; then it kills the child with SIGKILL, opens the mixin itself and checks
// tracker.used === COUNT(*) with the child's rows gone, that a write with the host's own
// statements outside mixin.transaction is still counted, and that creates work up to the limit,
// and no further.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LimitExceededError, openStore } from '../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { countRows, insertInstances, leftoverDeltas, openHost, rowIds, storedTracker } from './host.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts the crashing host and resolves once it printed its marker (it is then mid-transaction). */
async function startCrashingHost(url: string, mode: 'in-work' | 'after-apply', project: string, ids: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/limits/crash-host.ts', url, mode, project, ...ids], {
    cwd: root,
    env: { ...process.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const marker = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`the host never got mid-transaction: ${stderr}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /IN-TRANSACTION.*/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the host exited (${code ?? signal}) before its marker: ${stderr}`));
    });
  });
  return {
    marker,
    kill: async () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Reads with read-only transactions only: a SQLite writer in another process holds the write lock. */
async function peek(url: string, project: string) {
  const store = openStore(url);
  try {
    return await store.transaction(
      async (tx) => {
        const rows = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM instances WHERE project_id = ?', [project]);
        const tracker = await tx.get<{ used: number | string }>(
          'SELECT used FROM allot_limit_trackers WHERE project = ? AND resource_type = ?',
          [project, 'instances'],
        );
        return { rows: Number(rows?.n), used: Number(tracker?.used) };
      },
      { readOnly: true },
    );
  } finally {
    await store.close();
  }
}

describe.each(engines)('a host killed mid-transaction on %s', (engine) => {
  let database: TestDatabase;

  beforeEach(async () => {
    database = await createTestDatabase(engine);
    const host = await openHost(database.url);
    await host.mixin.setLimit('crash', 'instances', 5);
    await insertInstances(host.mixin, 'crash', ['keep-1', 'keep-2']);
    await host.close();
  });

  afterEach(async () => {
    await database.drop();
  });

  for (const mode of ['in-work', 'after-apply'] as const) {
    it(`leaves rows and tracker as they were when killed ${mode === 'in-work' ? 'inside the host work' : 'after the tracker moved, before COMMIT'}`, async () => {
      const child = await startCrashingHost(database.url, mode, 'crash', ['lost-1', 'lost-2', 'lost-3']);
      // after-apply: the tracker did move inside the transaction (2 + 3 <= 5).
      expect(child.marker).toBe(mode === 'in-work' ? 'IN-TRANSACTION in-work' : 'IN-TRANSACTION after-apply used=5');
      // Nothing of the open transaction is visible to others.
      expect(await peek(database.url, 'crash')).toEqual({ rows: 2, used: 2 });

      expect(await child.kill()).toEqual({ code: null, signal: 'SIGKILL' });

      const host = await openHost(database.url);
      try {
        expect(await rowIds(host.store, 'crash')).toEqual(['keep-1', 'keep-2']);
        expect(await storedTracker(host.store, 'crash')).toEqual({ limit: 5, used: 2 });
        expect((await host.mixin.getTracker('crash', 'instances')).used).toBe(await countRows(host.store, 'crash'));
        expect(await leftoverDeltas(host.store)).toBe(0);
        // A write with the store's own statements, outside mixin.transaction, is counted too.
        await host.store.transaction((tx) =>
          tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['plain', 'crash', 'x']),
        );
        expect(await storedTracker(host.store, 'crash')).toEqual({ limit: 5, used: 3 });

        // The next creates work, up to the limit and no further.
        await insertInstances(host.mixin, 'crash', ['new-1', 'new-2']);
        expect(await storedTracker(host.store, 'crash')).toEqual({ limit: 5, used: 5 });
        expect(await countRows(host.store, 'crash')).toBe(5);
        const refused = await insertInstances(host.mixin, 'crash', ['new-4']).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refused).toBeInstanceOf(LimitExceededError);
        expect(refused).toMatchObject({ limit: 5, used: 5, requested: 1, tracked: true });
        expect(await host.mixin.recount()).toEqual([]);
      } finally {
        await host.close();
      }
    });
  }
});
