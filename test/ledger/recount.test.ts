// Goal: the recount (invariant 2) is exact, reports no false drift while decisions run, and
// migrations are safe when several processes start at once.
// Method: recount repeatedly while 100 allocations are created and deleted concurrently (a
// recount that read counters and allocations at different moments would see drift that is
// not there); start three ledgers on one empty database at once.
import { migrations } from '../../src/store/migrations.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

describe.each(engines)('recount and migrations on %s', (engine) => {
  let database: TestDatabase;
  let ledger: Ledger;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    // Three at once: exactly one applies each migration, the others find it applied.
    const ledgers = await Promise.all([1, 2, 3].map(() => openLedger({ db: database.url })));
    ledger = ledgers[0]!;
    await Promise.all(ledgers.slice(1).map((other) => other.close()));
  });

  afterAll(async () => {
    await ledger.close();
    await database.drop();
  });

  it('records each migration once', async () => {
    const rows = await ledger.store.transaction((tx) =>
      tx.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'),
    );
    expect(rows.map((row) => row.version)).toEqual(migrations.map((m) => m.version));
  });

  it('finds no drift while decisions run, and finds drift that is there', async () => {
    await ledger.putKind('cpu', { displayName: 'CPU' });
    await ledger.putOrganization('busy', {});
    await ledger.putProject('busy', 'p', {});
    const writes = Array.from({ length: 100 }, async (_, i) => {
      const allocation = await ledger.createAllocation('busy', 'p', {
        resource: { kind: 'vm', id: `vm-${i}` },
        allocations: [{ kind: 'cpu', committed: i, reserved: 1 }],
      });
      if (i % 3 === 0) await ledger.deleteAllocation('busy', 'p', allocation.id);
    });
    const recounts = Array.from({ length: 10 }, () => ledger.verifyCounters());
    await Promise.all(writes);
    for (const found of await Promise.all(recounts)) expect(found).toEqual([]);

    const expectedCommitted = Array.from({ length: 100 }, (_, i) => i)
      .filter((i) => i % 3 !== 0)
      .reduce((sum, i) => sum + i, 0);
    expect((await ledger.getQuotas('busy'))[0]).toMatchObject({
      committed: expectedCommitted,
      reserved: 66,
    });

    await ledger.store.transaction((tx) =>
      tx.run("UPDATE quota_counters SET reserved = reserved + 1 WHERE organization_id = 'busy'"),
    );
    expect(await ledger.verifyCounters()).toEqual([
      {
        organization: 'busy',
        kind: 'cpu',
        stored: { committed: expectedCommitted, reserved: 67, held: 0 },
        actual: { committed: expectedCommitted, reserved: 66, held: 0 },
      },
    ]);
    expect(await ledger.repairCounters()).toHaveLength(1);
    expect(await ledger.verifyCounters()).toEqual([]);
  });
});
