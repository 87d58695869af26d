// Goal: over any sequence of host transactions and admin calls, the limits mixin agrees with a
// tiny reference model, and after every step each tracker's `used` equals the host's row count
// and stays within its limit, unless the limit was lowered below usage (and then no create has
// passed since).
// Method: model-based property test with fast-check, on each engine (one database per engine;
// each run uses fresh project names). A run picks 2-3 projects (most with a tracker of limit 0-10
// to start with) and 5-30 steps: creates of
// 1-3 rows in one or two projects (sometimes in a transaction that then throws), deletes of
// 1-3 rows, moves of 1-2 rows between projects (an UPDATE of the project column), setLimit to an
// absolute value or relative to usage (below, at, above), recount, a tracker corrupted by hand
// and then recounted (the recount must report exactly that drift), and deleteTracker. The model
// (row counts and limits per project) decides whether each transaction must pass, and if not,
// the LimitExceededError's fields; the test asserts the same outcome, then checks every project
// after every step.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitExceededError } from '../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { countRows, leftoverDeltas, openHost, region, storedTracker, type Host } from './host.js';

const numRuns = 40;
const maxSteps = 30;

type Step =
  | { kind: 'create'; parts: { p: number; n: number }[]; fail: boolean }
  | { kind: 'delete'; p: number; n: number }
  | { kind: 'move'; from: number; to: number; n: number }
  | { kind: 'setLimit'; p: number; how: 'absolute' | 'below' | 'at' | 'above'; value: number }
  | { kind: 'recount' }
  | { kind: 'corrupt'; p: number; stored: number }
  | { kind: 'deleteTracker'; p: number };

const project = fc.nat({ max: 2 });
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      parts: fc.array(fc.record({ p: project, n: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 2 }),
      fail: fc.integer({ min: 0, max: 4 }).map((v) => v === 0),
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('delete' as const), p: project, n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('move' as const), from: project, to: project, n: fc.integer({ min: 1, max: 2 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('setLimit' as const),
      p: project,
      how: fc.constantFrom('absolute' as const, 'below' as const, 'at' as const, 'above' as const),
      value: fc.integer({ min: 0, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'recount' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('corrupt' as const), p: project, stored: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteTracker' as const), p: project }) },
);

/**
 * SQLite's refusal of a create: the first row whose project has no tracker or no room left,
 * as [project, its tracker's used when that row came] (rows already in + this create's before).
 */
function firstRowRefused(parts: [ModelProject, number][]): [ModelProject, number] {
  const taken = new Map<ModelProject, number>();
  for (const [m, n] of parts) {
    for (let k = 0; k < n; k += 1) {
      const used = m.rows + (taken.get(m) ?? 0);
      if (m.limit === undefined || used + 1 > m.limit) return [m, used];
      taken.set(m, (taken.get(m) ?? 0) + 1);
    }
  }
  throw new Error('no row is refused');
}

/** The reference model of one project: its row count and its tracker's limit, if it has one. */
interface ModelProject {
  name: string;
  rows: number;
  limit: number | undefined;
  /** Set when a limit was lowered below usage; cleared once usage is within the limit again. */
  lowered: boolean;
}

class HostFailure extends Error {}

let runs = 0;

describe.each(engines)('limits mixin against a model on %s', (engine) => {
  let database: TestDatabase;
  let host: Host;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    host = await openHost(database.url);
  });

  afterAll(async () => {
    await host.close();
    await database.drop();
  });

  async function checkProjects(model: ModelProject[], context: string) {
    for (const m of model) {
      const rows = await countRows(host.store, m.name);
      expect(rows, `${context}: rows of ${m.name}`).toBe(m.rows);
      const tracker = await storedTracker(host.store, m.name);
      if (m.limit === undefined) {
        expect(tracker, `${context}: ${m.name} has no tracker`).toBeUndefined();
        continue;
      }
      expect(tracker, `${context}: tracker of ${m.name}`).toEqual({ limit: m.limit, used: rows });
      if (tracker!.used > tracker!.limit) expect(m.lowered, `${context}: ${m.name} over its limit`).toBe(true);
    }
    expect(await leftoverDeltas(host.store)).toBe(0);
  }

  it('agrees with the model and keeps used = COUNT(*) after every step', async () => {
    const { mixin, store } = host;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 3 }),
        // Most projects start with a tracker (limit 0-10), some without.
        fc.array(fc.option(fc.integer({ min: 0, max: 10 }), { freq: 5 }), { minLength: 3, maxLength: 3 }),
        fc.array(step, { minLength: 5, maxLength: maxSteps, size: 'max' }),
        async (projectCount, initialLimits, steps) => {
        runs += 1;
        const prefix = `r${runs}`;
        const model: ModelProject[] = Array.from({ length: projectCount }, (_, i) => ({
          name: `${prefix}-p${i}`,
          rows: 0,
          limit: undefined,
          lowered: false,
        }));
        const at = (p: number) => model[p % projectCount]!;
        for (const [i, m] of model.entries()) {
          const limit = initialLimits[i];
          if (limit === null || limit === undefined) continue;
          expect(await mixin.setLimit(m.name, 'instances', limit)).toMatchObject({ limit, used: 0 });
          m.limit = limit;
        }
        let nextId = 0;
        const trace: string[] = [];

        for (const s of steps) {
          trace.push(JSON.stringify(s));
          const context = trace.join(' → ');
          switch (s.kind) {
            case 'create': {
              // Net creates per project, and which projects the model refuses.
              const wanted = new Map<ModelProject, number>();
              for (const part of s.parts) wanted.set(at(part.p), (wanted.get(at(part.p)) ?? 0) + part.n);
              let refused = [...wanted].filter(([m, n]) => m.limit === undefined || m.rows + n > m.limit);
              // SQLite checks row by row: the first row that does not fit is refused, with what
              // the transaction's earlier rows took already (PostgreSQL: the net change at COMMIT).
              if (engine === 'sqlite' && refused.length > 0) refused = [firstRowRefused(s.parts.map((part) => [at(part.p), part.n]))];
              const failure = new HostFailure('the host gave up');
              const outcome = await mixin
                .transaction(async (tx) => {
                  for (const part of s.parts) {
                    for (let k = 0; k < part.n; k += 1) {
                      nextId += 1;
                      await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', [
                        `${prefix}-${nextId}`,
                        at(part.p).name,
                        'x',
                      ]);
                    }
                  }
                  if (s.fail) throw failure;
                })
                .then(
                  () => undefined,
                  (error: unknown) => error,
                );
              if (s.fail && (engine === 'postgres' || refused.length === 0)) {
                expect(outcome, context).toBe(failure);
              } else if (refused.length === 0) {
                expect(outcome, context).toBeUndefined();
                for (const [m, n] of wanted) {
                  // A create never passes while its project is over a lowered limit.
                  expect(m.rows + n, context).toBeLessThanOrEqual(m.limit!);
                  m.rows += n;
                }
              } else {
                expect(outcome, context).toBeInstanceOf(LimitExceededError);
                const error = outcome as LimitExceededError;
                const named = refused.find(([m]) => m.name === error.project);
                expect(named, `${context}: refused ${error.project}`).toBeDefined();
                const [m, n] = named!;
                expect(
                  {
                    resourceType: error.resourceType,
                    project: error.project,
                    region: error.region,
                    limit: error.limit,
                    used: error.used,
                    requested: error.requested,
                    tracked: error.tracked,
                  },
                  context,
                ).toEqual({
                  resourceType: 'instances',
                  project: m.name,
                  region,
                  limit: m.limit ?? 0,
                  used: m.limit === undefined ? 0 : engine === 'sqlite' ? n : m.rows,
                  requested: engine === 'sqlite' ? 1 : n,
                  tracked: m.limit !== undefined,
                });
              }
              break;
            }
            case 'delete': {
              const m = at(s.p);
              const removed = await mixin.transaction((tx) =>
                tx.run('DELETE FROM instances WHERE id IN (SELECT id FROM instances WHERE project_id = ? ORDER BY id LIMIT ?)', [
                  m.name,
                  s.n,
                ]),
              );
              expect(removed, context).toBe(Math.min(s.n, m.rows));
              m.rows -= removed;
              break;
            }
            case 'move': {
              const from = at(s.from);
              const to = at(s.to);
              const moved = from === to ? 0 : Math.min(s.n, from.rows);
              const mustPass = moved === 0 || (to.limit !== undefined && to.rows + moved <= to.limit);
              const outcome = await mixin
                .transaction((tx) =>
                  tx.run(
                    'UPDATE instances SET project_id = ? WHERE id IN (SELECT id FROM instances WHERE project_id = ? ORDER BY id LIMIT ?)',
                    [to.name, from.name, s.n],
                  ),
                )
                .then(
                  (n) => ({ n }),
                  (error: unknown) => ({ error }),
                );
              if (mustPass) {
                expect(outcome, context).toEqual({ n: from === to ? Math.min(s.n, from.rows) : moved });
                from.rows -= moved;
                to.rows += moved;
              } else {
                expect('error' in outcome && outcome.error, context).toBeInstanceOf(LimitExceededError);
                expect((outcome as { error: LimitExceededError }).error, context).toMatchObject({
                  project: to.name,
                  limit: to.limit ?? 0,
                  // SQLite checks row by row: the first row past the limit is refused.
                  used: to.limit === undefined ? 0 : engine === 'sqlite' ? Math.max(to.rows, to.limit) : to.rows,
                  requested: engine === 'sqlite' ? 1 : moved,
                  tracked: to.limit !== undefined,
                });
              }
              break;
            }
            case 'setLimit': {
              const m = at(s.p);
              const limit =
                s.how === 'absolute'
                  ? s.value
                  : s.how === 'below'
                    ? Math.max(0, m.rows - 1 - (s.value % 3))
                    : s.how === 'at'
                      ? m.rows
                      : m.rows + 1 + (s.value % 3);
              const tracker = await mixin.setLimit(m.name, 'instances', limit);
              expect(tracker, context).toMatchObject({ project: m.name, resourceType: 'instances', region, limit, used: m.rows });
              m.limit = limit;
              m.lowered = m.rows > limit;
              break;
            }
            case 'recount': {
              expect(await mixin.recount({ resourceType: 'instances' }).then((drifts) => drifts.filter((d) => d.project.startsWith(`${prefix}-`))), context).toEqual([]);
              break;
            }
            case 'corrupt': {
              const m = at(s.p);
              await store.transaction((tx) =>
                tx.run('UPDATE allot_limit_trackers SET used = ? WHERE project = ? AND resource_type = ?', [s.stored, m.name, 'instances']),
              );
              const drifts = await mixin.recount({ project: m.name });
              expect(drifts, context).toEqual(
                m.limit === undefined || s.stored === m.rows
                  ? []
                  : [{ region, project: m.name, resourceType: 'instances', stored: s.stored, actual: m.rows }],
              );
              break;
            }
            case 'deleteTracker': {
              const m = at(s.p);
              expect(await mixin.deleteTracker(m.name, 'instances'), context).toBe(m.limit !== undefined);
              m.limit = undefined;
              m.lowered = false;
              break;
            }
          }
          for (const m of model) if (m.limit !== undefined && m.rows <= m.limit) m.lowered = false;
          await checkProjects(model, context);
        }
        },
      ),
      { numRuns },
    );
  });
});
