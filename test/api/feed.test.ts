// Goal: a watch stream never waits on a follower that stopped moving. The follower shared by an
// organization's streams says when they are caught up; if its polls stop succeeding (a read
// that fails or hangs), a stream reads the journal itself rather than trusting a head that no
// longer moves — a stream once stalled 30 s in CI waiting on an entry that was committed.
// Method: the real feed over a real ledger on each engine, whose journal reads are wrapped so
// that the follower's first poll hangs forever (a lost connection that never times out); an
// entry is then committed and the stream's read must return it once the follower is stale.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JournalFeed } from '../../src/api/feed.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { waitFor } from '../support/wait.js';

const pollMs = 20;

describe.each(engines)('the journal feed on %s', (engine) => {
  let test: TestLedger;
  let feed: JournalFeed | undefined;

  beforeEach(async () => {
    test = await openTestLedger(engine);
    await test.ledger.putKind('gpus', { displayName: 'GPUs' });
    await test.ledger.putOrganization('acme', {});
    await test.ledger.putProject('acme', 'web', {});
  });
  afterEach(async () => {
    feed?.close();
    await test.close();
  });

  it("reads for itself when the follower's polls stop succeeding", async () => {
    const { ledger } = test;
    let calls = 0;
    // What the feed asks of the ledger, the real calls, except that the first journal read (the
    // follower's first poll) never answers.
    const hanging = {
      onChange: (listener: Parameters<Ledger['onChange']>[0]) => ledger.onChange(listener),
      readRevision: (organization: string) => ledger.readRevision(organization),
      readJournal: (...args: Parameters<Ledger['readJournal']>) => ((calls += 1) === 1 ? new Promise(() => undefined) : ledger.readJournal(...args)),
    } as unknown as Ledger;
    feed = new JournalFeed(hanging, pollMs);
    const unfollow = await feed.follow('acme');
    const head = await ledger.readRevision('acme');
    const made = await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'a' }, allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }] });
    const entries = await waitFor('the new entry', async () => {
      const read = await feed!.read('acme', head);
      return read.length > 0 ? read : undefined;
    }, 5000);
    expect(entries.map((entry) => entry.subject)).toEqual([made.id]);
    expect(calls).toBeGreaterThanOrEqual(2);
    unfollow();
  });
});
