// Goal: what a host's operations can do to the trackers behind its back is refused, and host
// processes may start together: several hosts opening the mixin on one fresh PostgreSQL
// database at the same moment all succeed (and again on a database that already has the
// triggers, as in a rolling restart), and every one of them then counts; TRUNCATE of a
// registered table is refused on PostgreSQL (it fires no row triggers), inside or outside a
// limits transaction, and changes nothing.
// Method: real databases per engine (test/support/engines.ts) and the shared test host
// (host.ts); the startup race opens four mixins, on four stores, with Promise.all.
import { afterEach, describe, expect, it } from 'vitest';
import { openLimits, openStore, type Store } from '../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { countRows, createHostTables, instancesTable, openHost, region, storedTracker } from './host.js';

describe.each(engines)('limits mixin startup and TRUNCATE on %s', (engine) => {
  let database: TestDatabase | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await database?.drop();
    database = undefined;
  });

  it('four hosts opening the mixin at once all succeed, twice, and each one counts', async () => {
    database = await createTestDatabase(engine);
    const first = openStore(database.url);
    stores.push(first);
    await createHostTables(first);
    for (let round = 0; round < 2; round += 1) {
      const opened = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const store = engine === 'sqlite' ? first : openStore(database!.url);
          if (store !== first) stores.push(store);
          return openLimits({ db: store, region, tables: [instancesTable] });
        }),
      );
      await opened[0]!.setLimit('p', 'instances', 10);
      for (const [i, mixin] of opened.entries()) {
        await mixin.transaction((tx) => tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', [`r${round}-${i}`, 'p', 'x']));
      }
      expect(await storedTracker(first, 'p')).toEqual({ limit: 10, used: 4 * (round + 1) });
      expect(await countRows(first, 'p')).toBe(4 * (round + 1));
    }
  });
});

// PostgreSQL only: SQLite has no TRUNCATE (its DELETE without WHERE fires the row triggers).
describe.skipIf(!engines.includes('postgres'))('limits mixin and TRUNCATE on postgres', () => {
  let database: TestDatabase | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await database?.drop();
    database = undefined;
  });

  it('TRUNCATE of a registered table is refused, inside or outside a limits transaction', async () => {
    database = await createTestDatabase('postgres');
    const host = await openHost(database.url);
    stores.push(host.store);
    await host.mixin.setLimit('p', 'instances', 3);
    await host.mixin.transaction(async (tx) => {
      await tx.run("INSERT INTO instances (id, project_id, name) VALUES ('a', 'p', 'x'), ('b', 'p', 'y')");
    });
    await expect(host.store.transaction((tx) => tx.run('TRUNCATE instances'))).rejects.toThrow(/cannot be truncated/);
    await expect(host.mixin.transaction((tx) => tx.run('TRUNCATE instances'))).rejects.toThrow(/cannot be truncated/);
    expect(await countRows(host.store, 'p')).toBe(2);
    expect(await storedTracker(host.store, 'p')).toEqual({ limit: 3, used: 2 });
  });
});
