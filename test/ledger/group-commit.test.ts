// Goal: decisions that share a group commit are isolated from one another. A refused decision
// (over quota, a taken resource, a stale If-Match, an unknown project, an atomic batch whose
// last entry fails, a dry run) leaves nothing behind and neither fails nor delays its
// neighbours: they get the answers they get alone, in the same one commit. A decision whose
// row the database itself refuses fails alone too; so does one whose kind's first counter rows
// cannot be made, and the pipeline goes on. A closing ledger answers what is queued.
// Method: per engine, two organizations set up alike. In one, the decisions that should pass
// run one at a time; in the other, the same decisions are queued in one tick with refusals
// between them, so the engine decides them as one group. Answers (ids and times aside), usage
// and the journal must match, and the engine must count one group and no retry. For the
// database's own refusals, triggers (test-only DDL) reject one resource id, and the counter
// rows of one kind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { createMetrics, type Metrics } from '../../src/controller/metrics.js';
import pg from 'pg';
import Database from 'better-sqlite3';

const gpus = (id: string, committed: number) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed }] });

/** What differs between two organizations' answers to the same request: ids and times. */
function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (value instanceof AllotError) return { code: value.code, detail: value.detail.replace(/[0-9a-f-]{36}/g, '<id>') };
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([name]) => !['id', 'organization', 'createdAt', 'updatedAt', 'expiresAt'].includes(name))
      .map(([name, item]) => [name, comparable(item)]),
  );
}

const settle = (promise: Promise<unknown>) => promise.then((value) => comparable(value), (error) => comparable(error));

describe.each(engines)('group commit on %s', (engine) => {
  let database: TestDatabase;
  let ledger: Ledger;
  let metrics: Metrics;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    ledger = await openLedger({ db: database.url });
    metrics = createMetrics(ledger);
    await ledger.putKind('gpus', { displayName: 'GPUs', default: 0 });
  });
  afterAll(async () => {
    await ledger.close();
    await database.drop();
  });

  /** An organization with 12 GPUs, 2 of them used (one in each project), counters made. */
  async function organization(id: string) {
    await ledger.putOrganization(id, {});
    await ledger.putProject(id, 'p1', {});
    await ledger.putProject(id, 'p2', {});
    await ledger.setQuotas(id, [{ kind: 'gpus', quantity: 12 }]);
    const x = await ledger.createAllocation(id, 'p1', gpus('x', 1));
    await ledger.createAllocation(id, 'p2', gpus('y', 1));
    return x;
  }

  /** The decisions that pass: together they take the last 10 GPUs exactly. */
  const passing = (org: string) => [
    () => ledger.createAllocation(org, 'p1', gpus('a', 4)),
    () => ledger.batch(org, [{ op: 'allocation.create', project: 'p2', body: gpus('b', 3) }, { op: 'hold.create', project: 'p1', body: { ...gpus('c', 3), ttlSeconds: 600 } }], { mode: 'atomic' }),
  ];

  it('refusals between neighbours change nothing of theirs: same answers as alone, one commit', async () => {
    await organization('alone');
    const alone = [];
    for (const decide of passing('alone')) alone.push(await settle(decide()));

    const x = await organization('grouped');
    const before = { ...ledger.engine.stats };
    const [first, second] = passing('grouped');
    const refusals = [
      // Its first entry would fit; the second cannot: neither is kept.
      () => ledger.batch('grouped', [{ op: 'allocation.create', project: 'p1', body: gpus('r1', 1) }, { op: 'allocation.create', project: 'nope', body: gpus('r2', 1) }], { mode: 'atomic' }),
      () => ledger.createAllocation('grouped', 'p2', gpus('big', 999)),
      () => ledger.createAllocation('grouped', 'p2', gpus('x', 1)),
      () => ledger.replaceAllocation('grouped', 'p1', x.id, gpus('x', 5), { ifGeneration: 7 }),
      // Fits, and is decided, and is undone.
      () => ledger.createAllocation('grouped', 'p2', gpus('dry', 6), { dryRun: true }),
      () => ledger.createAllocation('grouped', 'nope', gpus('n', 1)),
    ];
    const queued = [refusals[0]!(), first!(), refusals[1]!(), refusals[2]!(), refusals[4]!(), refusals[3]!(), second!(), refusals[5]!()];
    const answers = await Promise.all(queued.map(settle));

    expect([answers[1], answers[6]]).toEqual(alone);
    expect([answers[0], answers[2], answers[3], answers[5], answers[7]].map((a) => (a as { code?: string }).code ?? (a as { results: unknown[] }).results)).toEqual([
      [{ status: 'not-applied' }, { status: 'refused', error: { code: 'not-found', detail: expect.any(String) } }],
      'quota-exceeded',
      'duplicate-allocation',
      'precondition-failed',
      'not-found',
    ]);
    expect(answers[4]).toMatchObject({ project: 'p2', resource: { kind: 'vm' } });
    expect(ledger.engine.stats.groups - before.groups).toBe(1);
    expect(ledger.engine.stats.decisions - before.decisions).toBe(queued.length);
    expect(ledger.engine.stats.retries - before.retries).toBe(0);
    // The metrics saw that group: one commit of 8 decisions (bucket le=8 counts it, le=4 not).
    const sizes = (await metrics.registry.getSingleMetric('allot_group_decisions')!.get()).values;
    const bucket = (le: number) => sizes.find((v) => v.labels.le === le)!.value;
    expect(bucket(8) - bucket(4)).toBeGreaterThanOrEqual(1);

    expect(comparable(await ledger.getQuotas('grouped'))).toEqual(comparable(await ledger.getQuotas('alone')));
    expect(await ledger.readRevision('grouped')).toBe(await ledger.readRevision('alone'));
    const journal = async (org: string) => (await ledger.readJournalTail(org, 10)).map((e) => [e.revision, e.action]);
    expect(await journal('grouped')).toEqual(await journal('alone'));
    expect(await ledger.verifyCounters()).toEqual([]);
  });

  it('a decision whose row the database refuses fails alone; its group runs again without it', async () => {
    await organization('poisoned');
    await poison(database, engine);
    const before = { ...ledger.engine.stats };
    const answers = await Promise.allSettled([
      ledger.createAllocation('poisoned', 'p1', gpus('fine-1', 1)),
      ledger.createAllocation('poisoned', 'p1', gpus('poison', 1)),
      ledger.createAllocation('poisoned', 'p2', gpus('fine-2', 1)),
    ]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((answers[1] as PromiseRejectedResult).reason)).toMatch(/poison/);
    expect(ledger.engine.stats.splits - before.splits).toBe(1);
    expect(await metrics.registry.getSingleMetricAsString('allot_group_splits_total')).toMatch(/allot_group_splits_total [1-9]/);
    const quota = (await ledger.getQuotas('poisoned')).find((q) => q.kind === 'gpus');
    expect(quota!.used).toBe(4);
    expect(await ledger.verifyCounters()).toEqual([]);
  });

  it('a failure while recovering a group (making a kind\'s first counter rows) answers its decisions, and the next group runs', async () => {
    await organization('cursed-org');
    await ledger.putKind('cursed', { displayName: 'Cursed' });
    await refuseInsert(database, engine, 'quota_counters', 'kind', 'cursed');
    const cursed = { resource: { kind: 'vm', id: 'c1' }, allocations: [{ kind: 'cursed', committed: 1 }] };
    const answers = await Promise.allSettled([
      ledger.createAllocation('cursed-org', 'p1', cursed),
      ledger.createAllocation('cursed-org', 'p1', gpus('after-curse', 1)),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual(['rejected', 'fulfilled']);
    expect(String((answers[0] as PromiseRejectedResult).reason)).toMatch(/cursed refused/);
    // The same pipeline goes on: a later decision is answered.
    await expect(ledger.createAllocation('cursed-org', 'p2', gpus('later', 1))).resolves.toMatchObject({ project: 'p2' });
    expect(await ledger.verifyCounters()).toEqual([]);
  });

  it('closing answers every queued decision before the store closes, and refuses new ones', async () => {
    const closing = await openLedger({ db: database.url });
    await closing.putOrganization('closing', {});
    await closing.putProject('closing', 'p', {});
    await closing.setQuotas('closing', [{ kind: 'gpus', quantity: 100 }]);
    // Queued in one tick, then the ledger closes at once: a server stopped under load.
    const queued = Array.from({ length: 40 }, (_, i) => closing.createAllocation('closing', 'p', gpus(`c${i}`, 1)));
    const closed = closing.close();
    const late = closing.createAllocation('closing', 'p', gpus('late', 1)).catch((error: unknown) => error);
    const answers = await Promise.allSettled(queued);
    await closed;
    expect(answers.filter((a) => a.status === 'rejected').map((a) => String((a as PromiseRejectedResult).reason))).toEqual([]);
    expect(await late).toMatchObject({ code: 'service-unavailable' });
    const quota = (await ledger.getQuotas('closing')).find((q) => q.kind === 'gpus');
    expect(quota!.used).toBe(40);
  });
});

/** A trigger that refuses any allocation of resource `poison`, as a CHECK the ledger does not know. */
function poison(database: TestDatabase, engine: string): Promise<void> {
  return refuseInsert(database, engine, 'allocations', 'resource_id', 'poison');
}

/** A trigger that refuses inserting a row into `table` whose `column` is `value`. */
async function refuseInsert(database: TestDatabase, engine: string, table: string, column: string, value: string): Promise<void> {
  const name = `refuse_${table}_${value.replace(/\W/g, '_')}`;
  if (engine === 'sqlite') {
    const db = new Database(database.url.slice('sqlite:'.length));
    db.exec(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} WHEN NEW.${column} = '${value}'
      BEGIN SELECT RAISE(ABORT, '${value} refused'); END`);
    db.close();
    return;
  }
  const url = new URL(database.url);
  const schema = url.searchParams.get('schema')!;
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  await client.query(`SET search_path TO ${schema}`);
  await client.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.${column} = '${value}' THEN RAISE EXCEPTION '${value} refused'; END IF; RETURN NEW; END $$`);
  await client.query(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${name}()`);
  await client.end();
}
