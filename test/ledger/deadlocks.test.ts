// Goal: holds that expire under load never deadlock with decisions (DESIGN.md: one global
// lock order). Every decision first resolves its organization's expired holds, which moves
// counters of other projects and kinds than its own; done naively that locks rows out of the
// order every other decision takes them in, and PostgreSQL breaks the cycles as deadlocks.
// Method: a storm like the one an attack found — 64 concurrent workers through two ledgers
// (two connection pools, as two processes) on one organization with three kinds and four
// projects, creating 1-second holds that expire while they run, confirming, releasing,
// creating and deleting allocations — for a few seconds. On PostgreSQL the storm runs in a
// database of its own, so `pg_stat_database.deadlocks` counts its deadlocks alone: it must
// stay 0. On both engines every operation ends in a success or a deliberate refusal, and the
// counters equal the allocations afterwards.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, postgresUrl, type TestDatabase } from '../support/engines.js';

const workers = 64;
const stormMs = 4000;
const kinds = ['cpus', 'gpus', 'ips'];
const projects = ['p1', 'p2', 'p3', 'p4'];

/** A PostgreSQL database of its own (not a schema), so its statistics are the storm's alone. */
async function createOwnDatabase(): Promise<TestDatabase> {
  const name = `allot_storm_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return {
    engine: 'postgres',
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

async function deadlocksOf(url: string): Promise<number> {
  const name = new URL(url).pathname.slice(1);
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await client.query('SELECT deadlocks FROM pg_stat_database WHERE datname = $1', [name]);
    return Number(rows[0]?.deadlocks ?? 0);
  } finally {
    await client.end();
  }
}

const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)]!;

function someKinds() {
  const chosen = kinds.filter(() => Math.random() < 0.6);
  return (chosen.length > 0 ? chosen : [pick(kinds)]).map((kind) => ({ kind, committed: 1, reserved: 0 }));
}

describe.each(engines)('a hold-expiry storm on %s', (engine) => {
  let database: TestDatabase;
  let ledgers: Ledger[];

  beforeAll(async () => {
    database = engine === 'postgres' ? await createOwnDatabase() : await createTestDatabase(engine);
    ledgers = [await openLedger({ db: database.url }), await openLedger({ db: database.url })];
    const [ledger] = ledgers as [Ledger];
    for (const kind of kinds) await ledger.putKind(kind, { displayName: kind, default: 0 });
    await ledger.putOrganization('storm', {});
    for (const project of projects) await ledger.putProject('storm', project, {});
    await ledger.setQuotas('storm', kinds.map((kind) => ({ kind, quantity: 400 })));
  });

  afterAll(async () => {
    for (const ledger of ledgers ?? []) await ledger.close().catch(() => undefined);
    await database?.drop();
  });

  it(`${workers} workers for ${stormMs / 1000} s: no deadlock, no unexpected error, counters exact`, async () => {
    const deadlocksBefore = engine === 'postgres' ? await deadlocksOf(database.url) : 0;
    const unexpected: unknown[] = [];
    const done = { ok: 0, refused: 0, expired: 0 };
    const endAt = Date.now() + stormMs;
    let serial = 0;
    const worker = async (index: number) => {
      const ledger = ledgers[index % 2]!;
      const mine: { project: string; id: string; hold: boolean }[] = [];
      while (Date.now() < endAt) {
        const project = pick(projects);
        const resource = { kind: 'server', id: `w${index}-${(serial += 1)}` };
        try {
          const roll = Math.random();
          if (roll < 0.45) {
            const hold = await ledger.createHold('storm', project, { resource, allocations: someKinds(), ttlSeconds: 1 });
            // One hold in five is left alone to expire under the storm: a fast run resolves every
            // hold it keeps track of within its second, and would see none expire.
            if (serial % 5 !== 0) mine.push({ project, id: hold.id, hold: true });
          } else if (roll < 0.65) {
            const allocation = await ledger.createAllocation('storm', project, { resource, allocations: someKinds() });
            mine.push({ project, id: allocation.id, hold: false });
          } else if (mine.length > 0) {
            const target = mine.splice(Math.floor(Math.random() * mine.length), 1)[0]!;
            if (!target.hold) await ledger.deleteAllocation('storm', target.project, target.id);
            else if (roll < 0.8) await ledger.confirmHold('storm', target.project, target.id);
            else await ledger.releaseHold('storm', target.project, target.id);
          }
          done.ok += 1;
        } catch (error) {
          if (error instanceof AllotError && error.code === 'hold-already-resolved') done.expired += 1;
          else if (error instanceof AllotError && error.code === 'quota-exceeded') done.refused += 1;
          else unexpected.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, index) => worker(index)));
    expect(unexpected).toEqual([]);
    // The storm did what it is for: holds expired under it, and decisions resolved them (each
    // decision expires its organization's due holds first, journaled as hold.expired). Counted
    // in the journal: whether a worker also happened to touch an expired hold itself is chance.
    expect(done.ok).toBeGreaterThan(workers);
    const resolved = await ledgers[0]!.store.transaction((tx) =>
      tx.get<{ n: number | string }>(`SELECT COUNT(*) AS n FROM journal WHERE organization_id = 'storm' AND action = 'hold.expired'`),
    );
    expect(Number(resolved?.n ?? 0) + done.expired).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await ledgers[0]!.sweepExpiredHolds();
    expect(await ledgers[0]!.verifyCounters()).toEqual([]);
    expect(await ledgers[0]!.verifyJournal()).toEqual([]);
    if (engine === 'postgres') {
      // Closing the pools ends their backends, which flushes their statistics.
      for (const ledger of ledgers) await ledger.close();
      ledgers = [];
      expect(await deadlocksOf(database.url) - deadlocksBefore).toBe(0);
    }
  });
});
