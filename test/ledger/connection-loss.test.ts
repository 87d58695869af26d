// Goal: a PostgreSQL connection that dies mid-transaction (a database restart, a dropped
// network) fails that transaction and nothing else: no crash of the process, nothing written,
// and the next transaction works. Method: terminate the transaction's own backend from another
// connection while it runs, then check the error, the books and a new decision.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, postgresUrl, type TestDatabase } from '../support/engines.js';

// Only PostgreSQL has connections to lose; SQLite runs in the process.
describe.skipIf(!engines.includes('postgres'))('a lost PostgreSQL connection', () => {
  let database: TestDatabase;
  let ledger: Ledger;
  const admin = new pg.Client({ connectionString: postgresUrl });

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    ledger = await openLedger({ db: database.url });
    await admin.connect();
    await ledger.putKind('gpus', { displayName: 'GPUs' });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
  });

  afterAll(async () => {
    await admin.end();
    await ledger.close();
    await database.drop();
  });

  it('fails only the transaction it was in', async () => {
    const attempt = ledger.store.transaction(async (tx) => {
      await tx.run(
        `UPDATE organizations SET display_name = 'changed' WHERE id = 'acme'`,
      );
      const { pid } = (await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!;
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await tx.get('SELECT 1');
    });
    await expect(attempt).rejects.toThrow();
    expect((await ledger.getOrganization('acme')).displayName).toBe('acme');
    const allocation = await ledger.createAllocation('acme', 'web', {
      resource: { kind: 'vm', id: 'after' },
      allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
    });
    expect(allocation.generation).toBe(1);
    expect(await ledger.verifyCounters()).toEqual([]);
  });
});
