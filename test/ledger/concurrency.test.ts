// Goal: under any concurrency the ledger never grants more than the quota (invariant 1) and
// never lets two live allocations share a referenced resource (invariant 3).
// Method: 200 decisions race for a quota of 50, through one ledger and through two ledgers on
// the same database (two connection pools, as two processes would have); then exactly 50 are
// granted, usage is 50, and the recount agrees. If the check and the write were not atomic,
// more than 50 would pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

const quota = 50;
const racers = 200;

async function setUp(ledger: Ledger, organization: string) {
  await ledger.putKind('gpus', { displayName: 'GPUs', default: 0 });
  await ledger.putOrganization(organization, {});
  await ledger.putProject(organization, 'p1', {});
  await ledger.putProject(organization, 'p2', {});
  await ledger.setQuotas(organization, [{ kind: 'gpus', quantity: quota }]);
}

function outcomes(results: PromiseSettledResult<unknown>[]) {
  const granted = results.filter((r) => r.status === 'fulfilled').length;
  const refusals = results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => (r.reason instanceof AllotError ? r.reason.code : String(r.reason)));
  return { granted, refusals };
}

describe.each(engines)('concurrent decisions on %s', (engine) => {
  let database: TestDatabase;
  let first: Ledger;
  let second: Ledger;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    first = await openLedger({ db: database.url });
    second = await openLedger({ db: database.url });
  });

  afterAll(async () => {
    await first.close();
    await second.close();
    await database.drop();
  });

  it(`grants exactly ${quota} of ${racers} racing creates, through two ledgers`, async () => {
    await setUp(first, 'race');
    const results = await Promise.allSettled(
      Array.from({ length: racers }, (_, i) =>
        (i % 2 === 0 ? first : second).createAllocation('race', i % 3 === 0 ? 'p1' : 'p2', {
          resource: { kind: 'server', id: `srv-${i}` },
          allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
        }),
      ),
    );
    const { granted, refusals } = outcomes(results);
    expect(granted).toBe(quota);
    expect(refusals).toEqual(Array(racers - quota).fill('quota-exceeded'));
    const [gpus] = await first.getQuotas('race');
    expect(gpus).toMatchObject({ kind: 'gpus', used: quota, committed: quota, free: 0 });
    expect(await first.verifyCounters()).toEqual([]);
  });

  it('grants one of 50 racing creates for the same referenced resource', async () => {
    await setUp(first, 'dup');
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 === 0 ? first : second).createAllocation('dup', i % 2 === 0 ? 'p1' : 'p2', {
          resource: { kind: 'server', id: 'the-one' },
          allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
        }),
      ),
    );
    const { granted, refusals } = outcomes(results);
    expect(granted).toBe(1);
    expect(refusals).toEqual(Array(49).fill('duplicate-allocation'));
    expect((await first.getQuotas('dup'))[0]).toMatchObject({ used: 1 });
    expect(await first.verifyCounters()).toEqual([]);
  });

  it('keeps usage within the quota while creates, updates, deletes and quota cuts race', async () => {
    await setUp(first, 'mixed');
    const created = await first.createAllocation('mixed', 'p1', {
      resource: { kind: 'server', id: 'seed' },
      allocations: [{ kind: 'gpus', committed: 10, reserved: 0 }],
    });
    const operations: Promise<unknown>[] = [];
    for (let i = 0; i < 120; i += 1) {
      const ledger = i % 2 === 0 ? first : second;
      const resource = { kind: 'server', id: `m-${i % 40}` };
      const line = { kind: 'gpus', committed: 1 + (i % 3), reserved: i % 2 };
      if (i % 10 === 0) {
        operations.push(ledger.setQuotas('mixed', [{ kind: 'gpus', quantity: 30 + (i % 30) }]));
      } else if (i % 7 === 0) {
        operations.push(
          ledger.replaceAllocation('mixed', 'p1', created.id, {
            resource: { kind: 'server', id: 'seed' },
            allocations: [{ kind: 'gpus', committed: i % 20, reserved: 0 }],
          }),
        );
      } else if (i % 5 === 0) {
        operations.push(
          ledger.listAllocations('mixed', 'p2', { resourceId: resource.id }).then(async (page) => {
            for (const allocation of page.items) await ledger.deleteAllocation('mixed', 'p2', allocation.id);
          }),
        );
      } else {
        operations.push(ledger.createAllocation('mixed', 'p2', { resource, allocations: [line] }));
      }
    }
    const results = await Promise.allSettled(operations);
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(result.reason).toBeInstanceOf(AllotError);
        expect(['quota-exceeded', 'duplicate-allocation', 'quota-below-usage', 'not-found']).toContain(
          (result.reason as AllotError).code,
        );
      }
    }
    const [gpus] = await first.getQuotas('mixed');
    expect(gpus!.used).toBeLessThanOrEqual(gpus!.quantity!);
    expect(await first.verifyCounters()).toEqual([]);
  });
});
