// Goal: lowering a kind's default while a decision is in flight never lets that decision
// overcommit against the new default (a race the review found when decisions read the default
// before locking the counter). Method: on PostgreSQL, hold the default change open in a raw
// transaction (the same statements putKind runs), start a decision that must wait for it, then
// commit the change: the decision is judged against the new default and refused.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

// SQLite has one writer: a decision cannot run while another transaction changes the default.
describe.skipIf(!engines.includes('postgres'))('a default lowered during a decision', () => {
  let database: TestDatabase;
  let ledger: Ledger;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    ledger = await openLedger({ db: database.url });
    await ledger.putKind('gpus', { displayName: 'GPUs', default: 10 });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.createAllocation('acme', 'web', {
      resource: { kind: 'vm', id: 'first' },
      allocations: [{ kind: 'gpus', committed: 5, reserved: 0 }],
    });
  });

  afterAll(async () => {
    await ledger.close();
    await database.drop();
  });

  it('is judged against the new default', async () => {
    const url = new URL(database.url);
    const schema = url.searchParams.get('schema')!;
    url.searchParams.delete('schema');
    const change = new pg.Client({ connectionString: url.toString(), options: `-c search_path=${schema}` });
    await change.connect();
    await change.query('BEGIN');
    await change.query("UPDATE resource_kinds SET default_quota = 5 WHERE name = 'gpus'");
    await change.query("UPDATE quota_counters SET kind_default = 5 WHERE kind = 'gpus'");
    const decision = ledger
      .createAllocation('acme', 'web', {
        resource: { kind: 'vm', id: 'second' },
        allocations: [{ kind: 'gpus', committed: 3, reserved: 0 }],
      })
      .then(
        () => 'granted',
        (error: unknown) => (error instanceof AllotError ? error.code : String(error)),
      );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await change.query('COMMIT');
    await change.end();
    expect(await decision).toBe('quota-exceeded');
    const [gpus] = await ledger.getQuotas('acme');
    expect(gpus).toMatchObject({ quantity: 5, used: 5, source: 'default', overLimit: false });
  });
});
