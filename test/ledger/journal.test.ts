// Goal: the journal has exactly one entry per committed change, revisions gap-free per
// organization even under concurrency, and replaying it from revision 0 reproduces every usage
// counter exactly (invariant 4 and the journal's promise).
// Method: two ledgers on one database run a concurrent mix of creates, replaces, deletes,
// holds (confirmed, released, expired) and quota changes, many of them refused; then the
// journal is read back and replayed, and compared with the counters and with what succeeded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import type { JournalEntry } from '../../src/ledger/journal/journal.js';
import { createTestDatabase, engines, ManualClock, type TestDatabase } from '../support/engines.js';
import { readAll } from '../support/journal.js';

function replay(entries: JournalEntry[]) {
  const counters = new Map<string, { committed: number; reserved: number; held: number }>();
  for (const entry of entries) {
    for (const delta of entry.deltas) {
      const counter = counters.get(delta.kind) ?? { committed: 0, reserved: 0, held: 0 };
      counter.committed += delta.committed;
      counter.reserved += delta.reserved;
      counter.held += delta.held;
      counters.set(delta.kind, counter);
    }
  }
  return counters;
}

describe.each(engines)('journal on %s', (engine) => {
  let database: TestDatabase;
  let first: Ledger;
  let second: Ledger;
  const clock = new ManualClock();

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    first = await openLedger({ db: database.url, clock });
    second = await openLedger({ db: database.url, clock });
    await first.putKind('gpus', { displayName: 'GPUs', default: 40 });
    await first.putKind('cpu', { displayName: 'CPU' });
    for (const organization of ['j1', 'j2']) {
      await first.putOrganization(organization, {});
      await first.putProject(organization, 'p', {});
    }
  });

  afterAll(async () => {
    await first.close();
    await second.close();
    await database.drop();
  });

  it('replays to the counters, one gap-free entry per committed change', async () => {
    let committed = 0;
    const count = <T>(work: Promise<T>) =>
      work.then(
        (value) => {
          committed += 1;
          return value;
        },
        (error: unknown) => {
          if (!(error instanceof AllotError)) throw error;
          return undefined;
        },
      );
    const operations: Promise<unknown>[] = [];
    for (let i = 0; i < 150; i += 1) {
      const ledger = i % 2 === 0 ? first : second;
      const line = [{ kind: 'gpus', committed: i % 4, reserved: 1 }, { kind: 'cpu', committed: i, reserved: 0 }];
      const resource = { kind: 'vm', id: `vm-${i % 50}` };
      if (i % 11 === 0) {
        operations.push(count(ledger.setQuotas('j1', [{ kind: 'gpus', quantity: 20 + (i % 25) }])));
      } else if (i % 3 === 0) {
        operations.push(
          count(ledger.createHold('j1', 'p', { resource, allocations: line, ttlSeconds: 1 + (i % 5) })).then(
            async (hold) => {
              if (!hold) return;
              if (i % 2 === 0) await count(ledger.confirmHold('j1', 'p', hold.id));
              else if (i % 5 === 0) await count(ledger.releaseHold('j1', 'p', hold.id));
            },
          ),
        );
      } else {
        operations.push(
          count(ledger.createAllocation('j1', 'p', { resource, allocations: line })).then(async (allocation) => {
            if (!allocation) return;
            if (i % 4 === 1) {
              await count(
                ledger.replaceAllocation('j1', 'p', allocation.id, {
                  resource,
                  allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
                }),
              );
            }
            if (i % 7 === 2) await count(ledger.deleteAllocation('j1', 'p', allocation.id));
          }),
        );
      }
      // Another organization's decisions in between: they must not take j1's revisions.
      if (i % 10 === 0) {
        operations.push(
          count(
            ledger.createAllocation('j2', 'p', {
              resource: { kind: 'vm', id: `other-${i}` },
              allocations: [{ kind: 'cpu', committed: 1, reserved: 0 }],
            }),
          ),
        );
      }
    }
    await Promise.all(operations);
    // Let the remaining holds expire; the sweep journals each expiry.
    clock.advance(10_000);
    const expired = await first.sweepExpiredHolds();

    const j1 = await readAll(first, 'j1');
    const j2 = await readAll(first, 'j2');
    expect(j1.map((e) => e.revision)).toEqual(j1.map((_, index) => index + 1));
    expect(j2.map((e) => e.revision)).toEqual(j2.map((_, index) => index + 1));
    expect(j1.length + j2.length).toBe(committed + expired);
    expect(j1.filter((e) => e.action === 'hold.expired')).toHaveLength(expired);

    for (const [organization, entries] of [['j1', j1], ['j2', j2]] as const) {
      const replayed = replay(entries);
      for (const quota of await first.getQuotas(organization)) {
        const counter = replayed.get(quota.kind) ?? { committed: 0, reserved: 0, held: 0 };
        expect(counter, `${organization}/${quota.kind}`).toEqual({
          committed: quota.committed,
          reserved: quota.reserved,
          held: quota.held,
        });
      }
    }
    expect((await first.getQuotas('j1')).find((q) => q.kind === 'gpus')!.held).toBe(0);
    expect(await first.verifyCounters()).toEqual([]);
  });

  it('journals a counter correction so the replay still matches', async () => {
    await first.store.transaction((tx) =>
      tx.run("UPDATE quota_counters SET committed = committed + 7 WHERE organization_id = 'j2' AND kind = 'cpu'"),
    );
    expect(await first.repairCounters()).toHaveLength(1);
    const entries = await readAll(first, 'j2');
    expect(entries.at(-1)).toMatchObject({ action: 'counter.corrected', principal: 'system' });
    // The drift bypassed the journal, so the correction moves nothing the journal knows of.
    expect(entries.at(-1)!.deltas).toEqual([]);
    expect(entries.at(-1)!.changes).toMatchObject({ corrections: [{ kind: 'cpu', organization: 'j2' }] });
    const cpu = (await first.getQuotas('j2')).find((q) => q.kind === 'cpu')!;
    expect(replay(entries).get('cpu')).toEqual({ committed: cpu.committed, reserved: cpu.reserved, held: 0 });
  });
});
