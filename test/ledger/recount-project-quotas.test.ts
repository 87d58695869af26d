// Goal: the recount and the journal replay cover the project level of the counters: after any
// mix of decisions under caps and guarantees (and project deletions) they find nothing; they
// find, exactly, a project counter or an organization's guarantees' sum or shortfall that
// drifted; the repair sets each back and journals it; and migration 3 backfills the project
// counters of a database that had allocations before projects had counters.
// Method: per engine, fresh databases. (a) four projects with caps and guarantees run creates,
// replaces, deletes and holds (confirmed in part, released, expired by a decision and by the
// sweeper, released by a cascade) concurrently, one chain per project, on a ManualClock; a
// project is deleted with --cascade and its id reused; then verify is empty and the org rows
// agree with the project rows read through the API. (b–d) a small organization with known
// numbers is corrupted by hand with SQL, field by field. (e) a version-2 database is built by
// running migrations 1 and 2 and inserting rows with SQL, then opened with migrations on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, openStore, type Ledger } from '../../src/index.js';
import { migrations } from '../../src/store/migrations.js';
import {
  createTestDatabase,
  engines,
  ManualClock,
  openTestLedger,
  type TestLedger,
} from '../support/engines.js';
import { readAll } from '../support/journal.js';

const rowOf = <T extends { kind: string }>(rows: readonly T[], kind: string): T => {
  const row = rows.find((r) => r.kind === kind);
  expect(row, `row of ${kind}`).toBeDefined();
  return row!;
};

describe.each(engines)('project quota recount on %s', (engine) => {
  it('(a, d) verifyCounters and verifyJournal find nothing after a mixed workload', async () => {
    const clock = new ManualClock();
    const test = await openTestLedger(engine, clock);
    const { ledger } = test;
    try {
      await ledger.putKind('gpus', { displayName: 'GPUs' });
      await ledger.putKind('cpu', { displayName: 'CPU', default: 40 });
      await ledger.putOrganization('mix', {});
      for (const project of ['a', 'b', 'c', 'd']) await ledger.putProject('mix', project, {});
      await ledger.setQuotas('mix', [{ kind: 'gpus', quantity: 60 }]);
      await ledger.setProjectQuotaSet('mix', 'a', [{ kind: 'gpus', cap: 30, guaranteed: 15 }]);
      await ledger.setProjectQuotaSet('mix', 'b', [
        { kind: 'gpus', guaranteed: 20 },
        { kind: 'cpu', cap: 12, guaranteed: 6 },
      ]);
      await ledger.setProjectQuotaSet('mix', 'c', [{ kind: 'gpus', cap: 8 }]);
      await ledger.setProjectQuotaSet('mix', 'd', [
        { kind: 'gpus', cap: 20, guaranteed: 10 },
        { kind: 'cpu', guaranteed: 5 },
      ]);
      // What the cascade will have to end, and holds that will expire: made before the
      // workload so that none of them can be refused.
      await ledger.createAllocation('mix', 'd', {
        resource: { kind: 'vm', id: 'd-pinned' },
        allocations: [{ kind: 'gpus', committed: 2, reserved: 1 }, { kind: 'cpu', committed: 1 }],
      });
      await ledger.createHold('mix', 'd', {
        resource: { kind: 'vm', id: 'd-held' },
        allocations: [{ kind: 'gpus', committed: 1 }],
        ttlSeconds: 3600,
      });
      await ledger.createHold('mix', 'a', {
        resource: { kind: 'vm', id: 'a-short' },
        allocations: [{ kind: 'gpus', committed: 2 }],
        ttlSeconds: 1,
      });
      await ledger.createHold('mix', 'b', {
        resource: { kind: 'vm', id: 'b-short' },
        allocations: [{ kind: 'gpus', committed: 1 }, { kind: 'cpu', reserved: 1 }],
        ttlSeconds: 1,
      });
      const toRelease = await ledger.createHold('mix', 'b', {
        resource: { kind: 'vm', id: 'b-release' },
        allocations: [{ kind: 'gpus', committed: 1, reserved: 1 }],
        ttlSeconds: 3600,
      });
      await ledger.createHold('mix', 'c', {
        resource: { kind: 'vm', id: 'c-long' },
        allocations: [{ kind: 'gpus', committed: 1 }],
        ttlSeconds: 30,
      });

      const outcome = { ok: 0, refused: 0 };
      const attempt = async <T>(work: Promise<T>): Promise<T | undefined> => {
        try {
          const value = await work;
          outcome.ok += 1;
          return value;
        } catch (error) {
          if (!(error instanceof AllotError) || error.code !== 'quota-exceeded') throw error;
          outcome.refused += 1;
          return undefined;
        }
      };
      const chain = async (project: string) => {
        for (let j = 0; j < 15; j += 1) {
          const resource = { kind: 'vm', id: `${project}-${j}` };
          const lines = [
            { kind: 'gpus', committed: 1 + (j % 3), reserved: j % 2 },
            { kind: 'cpu', committed: 1 + (j % 2), reserved: 0 },
          ];
          if (j % 5 === 0) {
            const hold = await attempt(ledger.createHold('mix', project, { resource, allocations: lines, ttlSeconds: 1 + (j % 4) }));
            if (!hold) continue;
            if (j % 3 === 0) {
              await attempt(ledger.confirmHold('mix', project, hold.id, { allocations: [{ kind: 'gpus', committed: 1 }] }));
            } else if (j % 3 === 1) {
              await attempt(ledger.releaseHold('mix', project, hold.id));
            } // else: left to expire
            continue;
          }
          const allocation = await attempt(ledger.createAllocation('mix', project, { resource, allocations: lines }));
          if (!allocation) continue;
          if (j % 4 === 1) {
            await attempt(
              ledger.replaceAllocation('mix', project, allocation.id, {
                resource,
                allocations: [{ kind: 'gpus', committed: 2 + (j % 3), reserved: 1 }],
              }),
            );
          }
          if (j % 3 === 2) await attempt(ledger.deleteAllocation('mix', project, allocation.id));
        }
      };
      await Promise.all(['a', 'b', 'c', 'd'].map(chain));
      await ledger.releaseHold('mix', 'b', toRelease.id);
      expect(outcome.ok).toBeGreaterThan(0);
      expect(outcome.refused).toBeGreaterThan(0);
      expect(await ledger.verifyCounters()).toEqual([]);

      // Expired but not resolved yet: stored and recounted alike, still no drift.
      clock.advance(2_000);
      expect(await ledger.verifyCounters()).toEqual([]);
      // A decision resolves them first (lowering a guarantee is always allowed).
      await ledger.setProjectQuotaSet('mix', 'b', [
        { kind: 'gpus', guaranteed: 10 },
        { kind: 'cpu', cap: 12, guaranteed: 6 },
      ]);
      const expiredByDecision = (await readAll(ledger, 'mix')).filter((e) => e.action === 'hold.expired');
      expect(expiredByDecision.length).toBeGreaterThanOrEqual(2);
      expect(await ledger.verifyCounters()).toEqual([]);
      clock.advance(60_000);
      expect(await ledger.sweepExpiredHolds()).toBeGreaterThanOrEqual(1);
      expect(await ledger.verifyCounters()).toEqual([]);

      // A forced cap below a's usage: a is over its cap and cannot grow.
      const aUsed = rowOf((await ledger.getProjectQuotaSet('mix', 'a')).quotas, 'gpus').used;
      expect(aUsed).toBeGreaterThan(0);
      // (A guarantee may not exceed the cap: it comes down with it if need be.)
      const aGuaranteed = Math.min(15, aUsed - 1);
      await ledger.setProjectQuotaSet('mix', 'a', [{ kind: 'gpus', cap: aUsed - 1, guaranteed: aGuaranteed }], { force: true });
      expect(rowOf((await ledger.getProjectQuotaSet('mix', 'a')).quotas, 'gpus')).toMatchObject({ overCap: true, available: 0 });
      expect(
        await attempt(
          ledger.createAllocation('mix', 'a', {
            resource: { kind: 'vm', id: 'a-over' },
            allocations: [{ kind: 'gpus', committed: 1 }],
          }),
        ),
      ).toBeUndefined();

      // d goes with everything in it, then comes back empty.
      const live = (await ledger.listAllocations('mix', 'd', { limit: 100 })).items.length;
      const pending = (await ledger.listHolds('mix', 'd', { limit: 100 })).items.length;
      expect(live).toBeGreaterThanOrEqual(1);
      expect(pending).toBeGreaterThanOrEqual(1);
      await expect(ledger.deleteProject('mix', 'd')).rejects.toMatchObject({ code: 'project-not-empty' });
      expect(await ledger.deleteProject('mix', 'd', { cascade: true })).toEqual({ allocations: live, holds: pending });
      expect(await ledger.verifyCounters()).toEqual([]);
      await ledger.putProject('mix', 'd', {});
      await attempt(
        ledger.createAllocation('mix', 'd', {
          resource: { kind: 'vm', id: 'd-again' },
          allocations: [{ kind: 'cpu', committed: 1 }],
        }),
      );
      // And some more traffic after it, in the other projects.
      await attempt(
        ledger.createHold('mix', 'c', {
          resource: { kind: 'vm', id: 'c-late' },
          allocations: [{ kind: 'cpu', committed: 1 }],
          ttlSeconds: 5,
        }),
      );
      clock.advance(10_000);
      await ledger.sweepExpiredHolds();

      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);

      // The workload did what it was meant to: each kind of change is in the journal.
      const entries = await readAll(ledger, 'mix');
      const actions = new Set(entries.map((e) => e.action));
      expect(entries.filter((e) => e.action === 'hold.released' && e.changes.cascade === true)).toHaveLength(pending);
      expect(entries.filter((e) => e.action === 'allocation.deleted' && e.changes.cascade === true)).toHaveLength(live);
      for (const action of [
        'allocation.created',
        'allocation.updated',
        'allocation.deleted',
        'hold.created',
        'hold.confirmed',
        'hold.released',
        'hold.expired',
        'project-quota.set',
        'project.deleted',
      ] as const) {
        expect(actions, action).toContain(action);
      }

      // Seen from outside: the organization's rows are the sums of its projects' rows.
      const organization = await ledger.getQuotas('mix');
      const projects = await Promise.all(['a', 'b', 'c', 'd'].map((p) => ledger.getProjectQuotaSet('mix', p)));
      for (const kind of ['cpu', 'gpus']) {
        const rows = projects.map((set) => rowOf(set.quotas, kind));
        const org = rowOf(organization, kind);
        const sum = (field: 'committed' | 'reserved' | 'held' | 'guaranteed') =>
          rows.reduce((total, row) => total + row[field], 0);
        expect({ committed: org.committed, reserved: org.reserved, held: org.held }, kind).toEqual({
          committed: sum('committed'),
          reserved: sum('reserved'),
          held: sum('held'),
        });
        expect(org.guaranteed, kind).toBe(sum('guaranteed'));
        const keptBack = rows.reduce((total, row) => total + Math.max(0, row.guaranteed - row.used), 0);
        expect(org.freeForAnyProject, kind).toBe(Math.max(0, org.quantity! - org.used - keptBack));
      }
      // d's guarantees went with it; b's was lowered to 10.
      expect(rowOf(organization, 'gpus').guaranteed).toBe(aGuaranteed + 10);
      expect(rowOf(organization, 'cpu').guaranteed).toBe(6);
      expect(rowOf(projects[3]!.quotas, 'gpus')).toMatchObject({ cap: null, guaranteed: 0 });
    } finally {
      await test.close();
    }
  });

  describe('drift at the project level and in the guarantees (b, c, d)', () => {
    let test: TestLedger;
    let ledger: Ledger;
    const counters = { committed: 7, reserved: 1, held: 2 };

    beforeAll(async () => {
      test = await openTestLedger(engine, new ManualClock());
      ledger = test.ledger;
      await ledger.putKind('gpus', { displayName: 'GPUs' });
      await ledger.putOrganization('drift', {});
      await ledger.putProject('drift', 'p', {});
      await ledger.putProject('drift', 'q', {});
      await ledger.setQuotas('drift', [{ kind: 'gpus', quantity: 50 }]);
      await ledger.setProjectQuotaSet('drift', 'p', [{ kind: 'gpus', cap: 30, guaranteed: 10 }]);
      // p uses 4 + 1 + 2 held = 7 of its guarantee of 10 (shortfall 3); q uses 3.
      await ledger.createAllocation('drift', 'p', {
        resource: { kind: 'vm', id: 'p1' },
        allocations: [{ kind: 'gpus', committed: 4, reserved: 1 }],
      });
      await ledger.createHold('drift', 'p', {
        resource: { kind: 'vm', id: 'p2' },
        allocations: [{ kind: 'gpus', committed: 2 }],
        ttlSeconds: 3600,
      });
      await ledger.createAllocation('drift', 'q', {
        resource: { kind: 'vm', id: 'q1' },
        allocations: [{ kind: 'gpus', committed: 3 }],
      });
    });
    afterAll(async () => {
      await test.close();
    });

    const corrupt = (sql: string) => ledger.store.transaction((tx) => tx.run(sql));

    it('starts clean, with the numbers the cases below rely on', async () => {
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
      expect(rowOf(await ledger.getQuotas('drift'), 'gpus')).toMatchObject({
        ...counters,
        used: 10,
        guaranteed: 10,
        freeForAnyProject: 37,
      });
    });

    it('(b, d) reports a drifted project counter exactly, in both checks, and repairs it', async () => {
      await corrupt(
        "UPDATE project_counters SET committed = committed + 3 WHERE organization_id = 'drift' AND project_id = 'p' AND kind = 'gpus'",
      );
      const drift = {
        organization: 'drift',
        project: 'p',
        kind: 'gpus',
        stored: { committed: 7, reserved: 1, held: 2 },
        actual: { committed: 4, reserved: 1, held: 2 },
      };
      expect(await ledger.verifyCounters()).toEqual([drift]);
      const journal = await ledger.verifyJournal();
      expect(journal).toEqual([
        { organization: 'drift', project: 'p', kind: 'gpus', problem: expect.any(String) },
      ]);
      expect(journal[0]!.problem).toMatch(/committed=7\b.*committed=4\b/);

      const revisions = (await readAll(ledger, 'drift')).length;
      expect(await ledger.repairCounters()).toEqual([drift]);
      const entries = await readAll(ledger, 'drift');
      expect(entries).toHaveLength(revisions + 1);
      expect(entries.at(-1)).toMatchObject({
        action: 'counter.corrected',
        principal: 'system',
        deltas: [],
        changes: { corrections: [drift] },
      });
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
      expect(rowOf((await ledger.getProjectQuotaSet('drift', 'p')).quotas, 'gpus')).toMatchObject({
        committed: 4,
        reserved: 1,
        held: 2,
        used: 7,
      });
    });

    it('(c) reports a drifted shortfall with the guarantees fields, and repairs it', async () => {
      await corrupt("UPDATE quota_counters SET shortfall = shortfall + 5 WHERE organization_id = 'drift' AND kind = 'gpus'");
      // The drift is real: it keeps back 5 more than the guarantees do.
      expect(rowOf(await ledger.getQuotas('drift'), 'gpus').freeForAnyProject).toBe(32);
      const drift = {
        organization: 'drift',
        kind: 'gpus',
        stored: { ...counters, guaranteed: 10, shortfall: 8 },
        actual: { ...counters, guaranteed: 10, shortfall: 3 },
      };
      expect(await ledger.verifyCounters()).toEqual([drift]);
      // The journal knows usage, not guarantees: its replay still matches.
      expect(await ledger.verifyJournal()).toEqual([]);
      expect(await ledger.repairCounters()).toEqual([drift]);
      expect((await readAll(ledger, 'drift')).at(-1)).toMatchObject({
        action: 'counter.corrected',
        changes: { corrections: [drift] },
      });
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(rowOf(await ledger.getQuotas('drift'), 'gpus')).toMatchObject({ guaranteed: 10, freeForAnyProject: 37 });
    });

    it('(c) reports a drifted guarantees sum, and repairs it', async () => {
      await corrupt("UPDATE quota_counters SET guaranteed = 0 WHERE organization_id = 'drift' AND kind = 'gpus'");
      expect(rowOf(await ledger.getQuotas('drift'), 'gpus').guaranteed).toBe(0);
      const drift = {
        organization: 'drift',
        kind: 'gpus',
        stored: { ...counters, guaranteed: 0, shortfall: 3 },
        actual: { ...counters, guaranteed: 10, shortfall: 3 },
      };
      expect(await ledger.verifyCounters()).toEqual([drift]);
      expect(await ledger.repairCounters()).toEqual([drift]);
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(rowOf(await ledger.getQuotas('drift'), 'gpus')).toMatchObject({ guaranteed: 10, freeForAnyProject: 37 });
      // The repaired sum is enforced again: 10 guaranteed + 41 > 50.
      await expect(
        ledger.setProjectQuotaSet('drift', 'q', [{ kind: 'gpus', guaranteed: 41 }], { force: true }),
      ).rejects.toMatchObject({ code: 'guarantees-exceed-quota' });
    });

    it('(b, c) reports drift at both levels of one kind together, sorted, and repairs both', async () => {
      await corrupt(
        "UPDATE project_counters SET held = held + 1 WHERE organization_id = 'drift' AND project_id = 'q' AND kind = 'gpus'",
      );
      await corrupt("UPDATE quota_counters SET reserved = reserved + 2, shortfall = 0 WHERE organization_id = 'drift' AND kind = 'gpus'");
      const drift = [
        {
          organization: 'drift',
          kind: 'gpus',
          stored: { committed: 7, reserved: 3, held: 2, guaranteed: 10, shortfall: 0 },
          actual: { ...counters, guaranteed: 10, shortfall: 3 },
        },
        {
          organization: 'drift',
          project: 'q',
          kind: 'gpus',
          stored: { committed: 3, reserved: 0, held: 1 },
          actual: { committed: 3, reserved: 0, held: 0 },
        },
      ];
      expect(await ledger.verifyCounters()).toEqual(drift);
      expect(await ledger.repairCounters()).toEqual(drift);
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
    });
  });

  it('(e) migration 3 backfills the project counters of a version-2 database', async () => {
    const database = await createTestDatabase(engine);
    const clock = new ManualClock();
    const now = clock.nowMs();
    let ledger: Ledger | undefined;
    try {
      const store = openStore(database.url);
      try {
        await store.transaction(async (tx) => {
          for (const statement of store.setupStatements) await tx.run(statement);
          await tx.run(`CREATE TABLE schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
          for (const migration of migrations.slice(0, 2)) {
            await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
              migration.version,
              migration.name,
              now,
            ]);
            for (const statement of migration.statements) await tx.run(statement);
          }
        });
        await store.transaction(async (tx) => {
          const kind = (name: string, defaultQuota: number | null) =>
            tx.run(
              `INSERT INTO resource_kinds (name, display_name, description, default_quota, format, created_at, updated_at)
                VALUES (?, ?, '', ?, 'decimal', ?, ?)`,
              [name, name, defaultQuota, now, now],
            );
          await kind('gpus', null);
          await kind('cpu', 64);
          const journal: [string, number, string, string, string, object[]][] = [];
          const allocation = async (
            id: string,
            organization: string,
            project: string,
            state: 'live' | 'held',
            lines: [string, number, number][],
            ended: { resolution?: 'confirmed' | 'released'; deleted?: boolean } = {},
          ) => {
            await tx.run(
              `INSERT INTO allocations (id, organization_id, project_id, resource_kind, resource_id, state,
                expires_at, resolution, resolved_at, generation, created_by, updated_by, created_at, updated_at, deleted_at)
                VALUES (?, ?, ?, 'vm', ?, ?, ?, ?, ?, 1, 'system', 'system', ?, ?, ?)`,
              [
                id,
                organization,
                project,
                id,
                state,
                ended.resolution !== undefined || state === 'held' ? now + 86_400_000 : null,
                ended.resolution ?? null,
                ended.resolution ? now : null,
                now,
                now,
                ended.deleted ? now : null,
              ],
            );
            for (const [kind, committed, reserved] of lines) {
              await tx.run('INSERT INTO allocation_lines (allocation_id, kind, committed, reserved) VALUES (?, ?, ?, ?)', [
                id,
                kind,
                committed,
                reserved,
              ]);
            }
          };
          const entry = (organization: string, project: string, action: string, id: string, deltas: object[]) =>
            journal.push([organization, 0, project, action, id, deltas]);
          const d = (kind: string, committed: number, reserved: number, held: number) => ({ kind, committed, reserved, held });

          for (const organization of ['old', 'other']) {
            await tx.run(
              `INSERT INTO organizations (id, display_name, revision, quota_generation, created_at, updated_at)
                VALUES (?, ?, 0, 0, ?, ?)`,
              [organization, organization, now, now],
            );
          }
          for (const [organization, project] of [['old', 'p'], ['old', 'q'], ['old', 'r'], ['other', 'p']] as const) {
            await tx.run(
              'INSERT INTO projects (organization_id, id, display_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
              [organization, project, project, now, now],
            );
          }
          // old/p: two live allocations and a pending hold.
          await allocation('a1', 'old', 'p', 'live', [['cpu', 8, 0], ['gpus', 3, 1]]);
          entry('old', 'p', 'allocation.created', 'a1', [d('cpu', 8, 0, 0), d('gpus', 3, 1, 0)]);
          await allocation('a2', 'old', 'p', 'live', [['gpus', 2, 0]]);
          entry('old', 'p', 'allocation.created', 'a2', [d('gpus', 2, 0, 0)]);
          await allocation('h1', 'old', 'p', 'held', [['gpus', 1, 1]]);
          entry('old', 'p', 'hold.created', 'h1', [d('gpus', 0, 0, 2)]);
          // old/q: a live allocation, a deleted one, a confirmed hold and a released one.
          await allocation('a3', 'old', 'q', 'live', [['gpus', 5, 2]]);
          entry('old', 'q', 'allocation.created', 'a3', [d('gpus', 5, 2, 0)]);
          await allocation('a4', 'old', 'q', 'live', [['gpus', 7, 0]], { deleted: true });
          entry('old', 'q', 'allocation.created', 'a4', [d('gpus', 7, 0, 0)]);
          entry('old', 'q', 'allocation.deleted', 'a4', [d('gpus', -7, 0, 0)]);
          await allocation('h2', 'old', 'q', 'live', [['gpus', 1, 0]], { resolution: 'confirmed' });
          entry('old', 'q', 'hold.created', 'h2', [d('gpus', 0, 0, 3)]);
          entry('old', 'q', 'hold.confirmed', 'h2', [d('gpus', 1, 0, -3)]);
          await allocation('h3', 'old', 'q', 'held', [['gpus', 4, 0]], { resolution: 'released', deleted: true });
          entry('old', 'q', 'hold.created', 'h3', [d('gpus', 0, 0, 4)]);
          entry('old', 'q', 'hold.released', 'h3', [d('gpus', 0, 0, -4)]);
          // other/p: the same project id in another organization.
          await allocation('a5', 'other', 'p', 'live', [['gpus', 4, 0]]);
          entry('other', 'p', 'allocation.created', 'a5', [d('gpus', 4, 0, 0)]);

          const revisions = new Map<string, number>();
          for (const [organization, , project, action, id, deltas] of journal) {
            const revision = (revisions.get(organization) ?? 0) + 1;
            revisions.set(organization, revision);
            await tx.run(
              `INSERT INTO journal (organization_id, revision, project_id, at, principal, action, subject_id, changes, deltas)
                VALUES (?, ?, ?, ?, 'system', ?, ?, '{}', ?)`,
              [organization, revision, project, now, action, id, JSON.stringify(deltas)],
            );
          }
          for (const [organization, revision] of revisions) {
            await tx.run('UPDATE organizations SET revision = ? WHERE id = ?', [revision, organization]);
          }
          const counter = (organization: string, kind: string, quota: number | null, kindDefault: number | null, c: number, r: number, h: number) =>
            tx.run(
              `INSERT INTO quota_counters (organization_id, kind, quota, quota_generation, committed, reserved, held,
                updated_at, updated_by, kind_default) VALUES (?, ?, ?, 0, ?, ?, ?, ?, NULL, ?)`,
              [organization, kind, quota, c, r, h, now, kindDefault],
            );
          await counter('old', 'gpus', 40, null, 11, 3, 2);
          await counter('old', 'cpu', null, 64, 8, 0, 0);
          await counter('other', 'gpus', null, null, 4, 0, 0);
        });
        const versions = await store.transaction((tx) =>
          tx.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'),
        );
        expect(versions.map((row) => Number(row.version))).toEqual([1, 2]);
      } finally {
        await store.close();
      }

      ledger = await openLedger({ db: database.url, clock });
      const versions = await ledger.store.transaction((tx) =>
        tx.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'),
      );
      // 3 and every later migration apply on top of version 2.
      expect(versions.map((row) => Number(row.version))).toEqual(migrations.map((m) => m.version));
      expect(migrations.map((m) => m.version).slice(0, 3)).toEqual([1, 2, 3]);

      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);

      const p = (await ledger.getProjectQuotaSet('old', 'p')).quotas;
      expect(rowOf(p, 'gpus')).toMatchObject({ cap: null, guaranteed: 0, committed: 5, reserved: 1, held: 2, used: 8 });
      expect(rowOf(p, 'cpu')).toMatchObject({ committed: 8, reserved: 0, held: 0, used: 8 });
      const q = (await ledger.getProjectQuotaSet('old', 'q')).quotas;
      expect(rowOf(q, 'gpus')).toMatchObject({ committed: 6, reserved: 2, held: 0, used: 8 });
      expect(rowOf((await ledger.getProjectQuotaSet('old', 'r')).quotas, 'gpus')).toMatchObject({ used: 0 });
      expect(rowOf((await ledger.getProjectQuotaSet('other', 'p')).quotas, 'gpus')).toMatchObject({ committed: 4, used: 4 });
      expect(rowOf(await ledger.getQuotas('old'), 'gpus')).toMatchObject({
        quantity: 40,
        used: 16,
        guaranteed: 0,
        freeForAnyProject: 24,
      });

      // The backfilled counters are the ones decisions judge by.
      await ledger.setProjectQuotaSet('old', 'p', [{ kind: 'gpus', cap: 8 }]);
      await expect(
        ledger.createAllocation('old', 'p', { resource: { kind: 'vm', id: 'new' }, allocations: [{ kind: 'gpus', committed: 1 }] }),
      ).rejects.toMatchObject({
        code: 'quota-exceeded',
        extensions: { violations: [{ kind: 'gpus', scope: 'project', requested: 1, used: 8, limit: 8 }] },
      });
      // q uses 8 of a guarantee of 10: 2 are kept back, so r can take 40 - 16 - 2 = 22.
      await ledger.setProjectQuotaSet('old', 'q', [{ kind: 'gpus', guaranteed: 10 }]);
      expect(rowOf((await ledger.getProjectQuotaSet('old', 'r')).quotas, 'gpus').available).toBe(22);
      await ledger.deleteAllocation('old', 'p', 'a1');
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
    } finally {
      await ledger?.close();
      await database.drop();
    }
  });
});
