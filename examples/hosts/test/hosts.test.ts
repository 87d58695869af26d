// Goal: a host service adopts limits with the database client it already has — plain pg,
// better-sqlite3, Kysely and Drizzle, each on the engines it runs on — without changing its
// queries: its writes are counted and refused by the database in its own transactions.
// Method: each example host of examples/hosts (adopted once, at start) on a fresh database
// (SQLite file or PostgreSQL schema); the limits are set and the trackers read through the
// mixin, rows counted with plain SQL. Two host processes (examples/hosts/worker.ts and the test's
// own) race 100 creates each against a limit of 50; in-process, a refusal must roll back the host's own
// `events` row too, be recognized by isLimitExceeded with its numbers, and a delete must free a
// slot; a host killed with SIGKILL before its COMMIT must leave the tracker equal to the rows.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLimitExceeded, openLimits, openStore, type LimitsMixin, type Store } from '../../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../../../test/support/engines.js';
import { clients } from '../clients.js';
import { limitedTables, region, type Host } from '../host.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** Runs worker.ts; resolves with its stdout once it printed `until` (or exited). */
function worker(args: string[], until?: RegExp) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/hosts/worker.ts', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const output = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (until?.test(stdout)) resolve(stdout);
    });
    void exited.then(({ code }) => (code === 0 && !until ? resolve(stdout) : reject(new Error(`worker exited ${code}: ${stderr}`))));
  });
  const ready = new Promise<void>((resolve) => child.stdout!.on('data', () => stdout.includes('READY') && resolve()));
  return { output, ready, kill: () => (child.kill('SIGKILL'), exited) };
}

const cases = Object.entries(clients).flatMap(([client, { engines: supported }]) =>
  engines.filter((engine) => supported.includes(engine)).map((engine) => [client, engine] as const),
);

describe.each(cases)('the %s host on %s', (client, engine) => {
  let database: TestDatabase;
  let host: Host;
  let mixin: LimitsMixin;
  let store: Store;

  const count = async (table: 'instances' | 'events', project?: string) => {
    const where = project === undefined ? '' : ' WHERE project_id = ?';
    const row = await store.transaction((tx) => tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}${where}`, project === undefined ? [] : [project]));
    return Number(row?.n);
  };
  const used = async (project: string) => (await mixin.getTracker(project, 'instances')).used;

  beforeEach(async () => {
    database = await createTestDatabase(engine);
    host = await clients[client]!.open(database.url);
    mixin = await openLimits({ db: database.url, region, tables: limitedTables });
    store = openStore(database.url);
  });

  afterEach(async () => {
    await host.close();
    await mixin.close();
    await store.close();
    await database.drop();
  });

  it('grants exactly 50 of 200 creates racing from two host processes', async () => {
    await mixin.setLimit('race', 'instances', 50);
    // This process is the second host: its 100 creates start when the worker's do.
    const there = worker([client, database.url, 'create', 'race', '100']);
    await there.ready;
    const here = Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        host.create('race', `here-${i}`).then(
          () => ({ created: 1, refused: 0 }),
          (error: unknown) => {
            if (isLimitExceeded(error)) return { created: 0, refused: 1 };
            throw error;
          },
        ),
      ),
    );
    const [output, ours] = await Promise.all([there.output, here]);
    const results = [JSON.parse(output.split('\n')[1]!) as { created: number; refused: number }, ...ours];
    expect(results.reduce((sum, r) => sum + r.created, 0)).toBe(50);
    expect(results.reduce((sum, r) => sum + r.refused, 0)).toBe(150);
    expect(await count('instances', 'race')).toBe(50);
    expect(await count('events')).toBe(50);
    expect(await used('race')).toBe(50);
  }, 120_000);

  it('refuses past the limit with an error isLimitExceeded knows, rolling back the host rows; a delete frees a slot', async () => {
    // No tracker yet: fails closed.
    const untracked = await host.create('web', 'vm-0').catch((error: unknown) => error);
    expect(isLimitExceeded(untracked)).toMatchObject({ project: 'web', tracked: false });

    await mixin.setLimit('web', 'instances', 1);
    const first = await host.create('web', 'vm-1');
    const refused = await host.create('web', 'vm-2').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    const limit = isLimitExceeded(refused);
    expect(limit && { ...limit }).toMatchObject({ resourceType: 'instances', project: 'web', region, limit: 1, used: 1, requested: 1, tracked: true });
    // The refused create's event went with it.
    expect(await count('events')).toBe(1);
    expect(await count('instances', 'web')).toBe(1);

    expect(await host.remove(first)).toBe(true);
    expect(await used('web')).toBe(0);
    await host.create('web', 'vm-3');
    expect(await used('web')).toBe(1);
    expect(await count('instances', 'web')).toBe(1);
  });

  it('leaves the tracker equal to the rows when a host is killed before its COMMIT', async () => {
    await mixin.setLimit('kill', 'instances', 3);
    await host.create('kill', 'vm-1');
    const doomed = worker([client, database.url, 'hang', 'kill'], /IN-TRANSACTION/);
    await doomed.output;
    expect(await doomed.kill()).toMatchObject({ signal: 'SIGKILL' });

    expect(await count('instances', 'kill')).toBe(1);
    expect(await used('kill')).toBe(1);
    expect(await mixin.recount()).toEqual([]);
    await host.create('kill', 'vm-2');
    await host.create('kill', 'vm-3');
    expect(isLimitExceeded(await host.create('kill', 'vm-4').catch((error: unknown) => error))).toMatchObject({ used: 3 });
    expect(await used('kill')).toBe(3);
  }, 60_000);
});
