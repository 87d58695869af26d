// Goal: the allot command migrates, recounts, replays the journal and repairs a real database
// on both engines. Method: run `allot` as a child process; corrupt a counter and then the
// journal by hand with SQL, as a bug or an operator would, and check that `verify` finds each
// (exit 1), `verify --repair` fixes the counter, and `verify` is clean in between (exit 0).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allot } from '../support/cli.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';



describe.each(engines)('allot CLI on %s', (engine) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
  });
  afterAll(async () => {
    await database.drop();
  });

  it('migrate applies the schema once', async () => {
    const first = await allot('migrate', '--db', database.url);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/applied migrations 1/);
    const second = await allot('migrate', '--db', database.url);
    expect(second.stdout).toMatch(/schema is up to date/);
  });

  it('verify finds a corrupted counter, --repair fixes it', async () => {
    const ledger: Ledger = await openLedger({ db: database.url });
    await ledger.putKind('gpus', { displayName: 'GPUs' });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.createAllocation('acme', 'web', {
      resource: { kind: 'server', id: 's1' },
      allocations: [{ kind: 'gpus', committed: 3, reserved: 2 }],
    });
    expect(await allot('verify', '--db', database.url)).toMatchObject({ code: 0 });

    await ledger.store.transaction((tx) =>
      tx.run("UPDATE quota_counters SET committed = 99 WHERE organization_id = 'acme' AND kind = 'gpus'"),
    );
    await ledger.close();

    const broken = await allot('verify', '--db', database.url);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(
      'acme gpus: stored committed=99 reserved=2 held=0, actual committed=3 reserved=2 held=0',
    );

    const repaired = await allot('verify', '--repair', '--db', database.url);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain('repaired 1 counter');

    expect(await allot('verify', '--db', database.url)).toMatchObject({ code: 0 });
    const reopened = await openLedger({ db: database.url });
    expect((await reopened.getQuotas('acme'))[0]).toMatchObject({ committed: 3, reserved: 2, used: 5 });
    await reopened.close();
  });

  it('verify replays the journal and finds an entry that went missing', async () => {
    const ledger = await openLedger({ db: database.url });
    await ledger.createAllocation('acme', 'web', {
      resource: { kind: 'server', id: 's2' },
      allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
    });
    const last = (await ledger.readJournal('acme', 0, 1000)).at(-1)!.revision;
    await ledger.store.transaction((tx) =>
      tx.run("DELETE FROM journal WHERE organization_id = 'acme' AND revision = ?", [last - 1]),
    );
    await ledger.close();
    const result = await allot('verify', '--db', database.url);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`acme (journal): revision ${last - 1} is missing`);
  });

  it('refuses an unknown database URL with a clear message', async () => {
    const result = await allot('verify', '--db', 'mysql://nope');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unsupported database URL');
  });
});
