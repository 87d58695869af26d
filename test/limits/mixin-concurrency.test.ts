// Goal: under concurrency the limits mixin never lets a project pass its limit and its trackers
// never drift from the host's rows: no create is counted twice or lost, whatever races it.
// Method: many mixin.transaction calls at once (PostgreSQL: through two mixins opened on the same
// schema, i.e. two connection pools as two host processes would have; SQLite: one mixin, whose
// connection serializes them): 200 creates against a limit of 50 (exactly 50 pass, each refusal
// a LimitExceededError with the exact fields), creates in several projects at once (each gets
// exactly its own limit, an untracked project none), creates of 1-3 rows, creates racing deletes,
// rows moved between projects racing creates, and creates and deletes racing recounts and
// setLimit. After every race, for every project, the tracker's used equals SELECT COUNT(*) of its
// rows, is within its limit, and a recount finds no drift.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitExceededError, type LimitsMixin } from '../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { countRows, insertInstances, leftoverDeltas, openHost, region, type Host } from './host.js';

function settle(results: PromiseSettledResult<unknown>[]) {
  const passed = results.filter((r) => r.status === 'fulfilled').length;
  const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  return { passed, errors };
}

function refusalFields(error: unknown) {
  if (!(error instanceof LimitExceededError)) throw error;
  return {
    resourceType: error.resourceType,
    project: error.project,
    region: error.region,
    limit: error.limit,
    used: error.used,
    requested: error.requested,
    tracked: error.tracked,
  };
}

describe.each(engines)('concurrent limits transactions on %s', (engine) => {
  let database: TestDatabase;
  let first: Host;
  let second: Host;
  /** The mixin the i-th racer goes through: alternately each pool on PostgreSQL. */
  const through = (i: number): LimitsMixin => (i % 2 === 0 ? first.mixin : second.mixin);

  async function expectConsistent(projects: string[]) {
    for (const project of projects) {
      const rows = await countRows(first.store, project);
      const tracker = await first.mixin.getTracker(project, 'instances');
      expect({ project, used: tracker.used }).toEqual({ project, used: rows });
      expect(tracker.used).toBeLessThanOrEqual(tracker.limit);
      expect(await second.mixin.getTracker(project, 'instances')).toEqual(tracker);
    }
    expect(await first.mixin.recount()).toEqual([]);
    expect(await leftoverDeltas(first.store)).toBe(0);
  }

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    first = await openHost(database.url);
    // PostgreSQL: a second pool on the same schema (opened after the first, which migrated).
    second = engine === 'postgres' ? await openHost(database.url) : first;
  });

  afterAll(async () => {
    await first.close();
    if (second !== first) await second.close();
    await database.drop();
  });

  it('lets exactly 50 of 200 racing creates through against a limit of 50', async () => {
    await first.mixin.setLimit('race', 'instances', 50);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => insertInstances(through(i), 'race', [`race-${i}`])),
    );
    const { passed, errors } = settle(results);
    expect(passed).toBe(50);
    expect(errors.map(refusalFields)).toEqual(
      Array(150).fill({ resourceType: 'instances', project: 'race', region, limit: 50, used: 50, requested: 1, tracked: true }),
    );
    expect(await countRows(first.store, 'race')).toBe(50);
    expect((await first.mixin.getTracker('race', 'instances')).used).toBe(50);
    await expectConsistent(['race']);
  });

  it('never passes the limit with racing creates of 1 to 3 rows', async () => {
    await first.mixin.setLimit('multi', 'instances', 50);
    const sizes = Array.from({ length: 120 }, (_, i) => (i % 3) + 1);
    const results = await Promise.allSettled(
      sizes.map((size, i) =>
        insertInstances(
          through(i),
          'multi',
          Array.from({ length: size }, (_, k) => `multi-${i}-${k}`),
        ),
      ),
    );
    const created = results.reduce((sum, r, i) => sum + (r.status === 'fulfilled' ? sizes[i]! : 0), 0);
    for (const error of settle(results).errors) {
      const fields = refusalFields(error);
      expect(fields.used + fields.requested).toBeGreaterThan(50);
    }
    const rows = await countRows(first.store, 'multi');
    expect(rows).toBe(created);
    expect(rows).toBeLessThanOrEqual(50);
    await expectConsistent(['multi']);
  });

  it('gives each project exactly its own limit when creates in several projects race', async () => {
    const limits: Record<string, number> = { 'pa': 10, 'pb': 25, 'pc': 5, 'pd': 0 };
    for (const [project, limit] of Object.entries(limits)) await first.mixin.setLimit(project, 'instances', limit);
    const projects = [...Object.keys(limits), 'untracked'];
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => {
        const project = projects[i % projects.length]!;
        return insertInstances(through(Math.floor(i / projects.length)), project, [`${project}-${i}`]);
      }),
    );
    const byProject = new Map<string, { passed: number; refusals: ReturnType<typeof refusalFields>[] }>();
    results.forEach((result, i) => {
      const project = projects[i % projects.length]!;
      const entry = byProject.get(project) ?? { passed: 0, refusals: [] };
      if (result.status === 'fulfilled') entry.passed += 1;
      else entry.refusals.push(refusalFields(result.reason));
      byProject.set(project, entry);
    });
    for (const [project, limit] of Object.entries(limits)) {
      expect({ project, passed: byProject.get(project)!.passed }).toEqual({ project, passed: limit });
      expect(byProject.get(project)!.refusals).toEqual(
        Array(60 - limit).fill({ resourceType: 'instances', project, region, limit, used: limit, requested: 1, tracked: true }),
      );
      expect(await countRows(first.store, project)).toBe(limit);
    }
    expect(byProject.get('untracked')!.passed).toBe(0);
    expect(byProject.get('untracked')!.refusals).toEqual(
      Array(60).fill({ resourceType: 'instances', project: 'untracked', region, limit: 0, used: 0, requested: 1, tracked: false }),
    );
    expect(await countRows(first.store, 'untracked')).toBe(0);
    expect(await first.mixin.listTrackers({ project: 'untracked' })).toEqual([]);
    await expectConsistent(Object.keys(limits));
  });

  it('keeps used equal to the row count when creates and deletes race', async () => {
    await first.mixin.setLimit('churn', 'instances', 30);
    await insertInstances(first.mixin, 'churn', Array.from({ length: 25 }, (_, i) => `pre-${String(i).padStart(2, '0')}`));
    const creates = Array.from({ length: 120 }, (_, i) => ({ kind: 'create' as const, id: `new-${i}` }));
    // Deletes of rows there from the start, of rows a racing create may or may not have made
    // yet, and of "whichever row sorts first" (two racers may pick the same one).
    const deletes = Array.from({ length: 90 }, (_, i) => ({
      kind: 'delete' as const,
      sql:
        i % 3 === 2
          ? 'DELETE FROM instances WHERE id = (SELECT MIN(id) FROM instances WHERE project_id = ?)'
          : 'DELETE FROM instances WHERE id = ?',
      param: i % 3 === 0 ? `pre-${String(i % 25).padStart(2, '0')}` : i % 3 === 1 ? `new-${i}` : 'churn',
    }));
    const operations = [...creates, ...deletes].sort((a, b) => hash(JSON.stringify(a)) - hash(JSON.stringify(b)));
    let removed = 0;
    const results = await Promise.allSettled(
      operations.map((operation, i) =>
        operation.kind === 'create'
          ? insertInstances(through(i), 'churn', [operation.id]).then(() => 'created')
          : through(i)
              .transaction((tx) => tx.run(operation.sql, [operation.param]))
              .then((n) => {
                removed += n;
                return 'deleted';
              }),
      ),
    );
    let created = 0;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        if (result.value === 'created') created += 1;
        return;
      }
      // Only creates may be refused, and only for the limit.
      expect(operations[i]!.kind).toBe('create');
      expect(refusalFields(result.reason)).toMatchObject({ project: 'churn', limit: 30, requested: 1, tracked: true });
    });
    expect(created).toBeGreaterThan(5);
    expect(removed).toBeGreaterThan(0);
    expect(await countRows(first.store, 'churn')).toBe(25 + created - removed);
    await expectConsistent(['churn']);
  });

  it('keeps both projects consistent when rows moved between them race creates', async () => {
    await first.mixin.setLimit('m1', 'instances', 20);
    await first.mixin.setLimit('m2', 'instances', 20);
    await insertInstances(first.mixin, 'm1', Array.from({ length: 15 }, (_, i) => `m1-${i}`));
    await insertInstances(first.mixin, 'm2', Array.from({ length: 15 }, (_, i) => `m2-${i}`));
    const operations = [
      ...Array.from({ length: 60 }, (_, i) => ({ kind: 'move' as const, id: i % 2 === 0 ? `m1-${i % 15}` : `m2-${i % 15}`, to: i % 2 === 0 ? 'm2' : 'm1' })),
      ...Array.from({ length: 60 }, (_, i) => ({ kind: 'create' as const, id: `mc-${i}`, to: i % 2 === 0 ? 'm1' : 'm2' })),
    ].sort((a, b) => hash(a.id + a.kind) - hash(b.id + b.kind));
    const results = await Promise.allSettled(
      operations.map((operation, i) =>
        operation.kind === 'create'
          ? insertInstances(through(i), operation.to, [operation.id])
          : through(i).transaction((tx) =>
              tx.run('UPDATE instances SET project_id = ? WHERE id = ? AND project_id <> ?', [operation.to, operation.id, operation.to]),
            ),
      ),
    );
    for (const result of results) {
      if (result.status === 'rejected') expect(refusalFields(result.reason)).toMatchObject({ limit: 20, tracked: true });
    }
    expect((await countRows(first.store, 'm1')) + (await countRows(first.store, 'm2'))).toBe(
      30 + results.filter((r, i) => r.status === 'fulfilled' && operations[i]!.kind === 'create').length,
    );
    await expectConsistent(['m1', 'm2']);
  });

  it('finds no drift when recounts and setLimit race creates and deletes', async () => {
    await first.mixin.setLimit('rc', 'instances', 40);
    await insertInstances(first.mixin, 'rc', Array.from({ length: 20 }, (_, i) => `rc-pre-${i}`));
    const work: Promise<unknown>[] = [];
    const recounts: Promise<unknown>[] = [];
    for (let i = 0; i < 150; i += 1) {
      const mixin = through(i);
      if (i % 10 === 0) recounts.push(mixin.recount({ project: 'rc' }));
      else if (i % 10 === 5) recounts.push(mixin.setLimit('rc', 'instances', 40).then(() => []));
      else if (i % 3 === 0) work.push(mixin.transaction((tx) => tx.run('DELETE FROM instances WHERE id = ?', [`rc-pre-${i % 20}`])));
      else work.push(insertInstances(mixin, 'rc', [`rc-${i}`]).catch((error: unknown) => refusalFields(error)));
    }
    await Promise.all(work);
    // A recount under the tracker's lock sees exactly what the committed transactions counted.
    expect(await Promise.all(recounts)).toEqual(Array(recounts.length).fill([]));
    expect((await first.mixin.readJournal({ project: 'rc' })).filter((entry) => entry.action === 'recount.drift')).toEqual([]);
    await expectConsistent(['rc']);
  });
});

/** A stable pseudo-random order for the operations of a race (FNV-1a). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
