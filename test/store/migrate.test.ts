// Goal: processes starting at once on a new database apply the schema once between them and all
// start: the pending migrations go in one transaction, and a process that loses the race (its
// insert of a version conflicts) goes on one migration at a time, skipping what is there.
// Method: on each engine, several ledgers opened at once on one fresh database, then the
// migrations table and the pending list read back; and a database migrated part of the way
// (the latest two versions and their tables removed) brought up to date.
import { afterEach, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/index.js';
import { migrations, pendingMigrations } from '../../src/store/migrations.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

describe.each(engines)('migrations on %s', (engine) => {
  let database: TestDatabase;
  let ledgers: Ledger[] = [];

  afterEach(async () => {
    for (const ledger of ledgers) await ledger.close();
    ledgers = [];
    await database.drop();
  });

  it('four processes starting at once on a new database apply each migration once', async () => {
    database = await createTestDatabase(engine);
    ledgers = await Promise.all(Array.from({ length: 4 }, () => openLedger({ db: database.url })));
    const rows = await ledgers[0]!.store.transaction((tx) => tx.all<{ version: number | string }>('SELECT version FROM schema_migrations ORDER BY version'));
    expect(rows.map((row) => Number(row.version))).toEqual(migrations.map((migration) => migration.version));
    expect(await pendingMigrations(ledgers[0]!.store)).toEqual([]);
  });

  it('brings a database migrated part of the way up to date', async () => {
    database = await createTestDatabase(engine);
    const first = await openLedger({ db: database.url });
    await first.store.transaction(async (tx) => {
      for (const table of ['quota_request_policies', 'quota_requests', 'denials', 'subscription_cursors', 'subscriptions']) await tx.run(`DROP TABLE ${table}`);
      await tx.run('DELETE FROM schema_migrations WHERE version >= 11');
    });
    await first.close();
    ledgers = [await openLedger({ db: database.url })];
    expect(await pendingMigrations(ledgers[0]!.store)).toEqual([]);
    expect(await ledgers[0]!.listSubscriptions()).toEqual([]);
  });
});
