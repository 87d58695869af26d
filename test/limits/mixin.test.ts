// Goal: the limits mixin (allot/limits) as a library, on both engines: registered tables are
// counted by triggers (inserts, deletes, updates that move rows between projects, statements of
// many rows), unregistered types by declarations; a write to a registered table outside a limits
// transaction is counted and checked too (no session setting turns that off); a transaction that would pass a limit rolls back
// with the host's rows and a LimitExceededError whose fields are exact; a missing tracker fails
// closed for creates but lets deletes pass; setLimit recounts; a limit below usage is kept and
// lets only deletes through; recount repairs hand-made drift and journals it; listTrackers,
// deleteTracker and LimitsUsageError; and the Fastify admin plugin, hidden behind `authorize`.
// Method: each test gets a fresh database (SQLite file or PostgreSQL schema) with a host that
// creates its own tables first, then opens the mixin on the same store, on a ManualClock. After
// each step the tests compare trackers with SELECT COUNT(*) of the host's rows.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isLimitExceeded,
  LimitExceededError,
  LimitsUsageError,
  limitsAdminRoutes,
  openLimits,
  type Executor,
  type LimitsMixin,
  type LimitsTransaction,
  type Store,
} from '../../src/limits/index.js';
import { createTestDatabase, engines, ManualClock, type TestDatabase } from '../support/engines.js';
import {
  countRows,
  insertInstances,
  instancesTable,
  leftoverDeltas,
  openHost,
  region,
  rowIds,
  storedTracker,
  type Host,
} from './host.js';

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** The LimitExceededError a promise rejects with, as plain fields. */
async function exceeded(promise: Promise<unknown>) {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(LimitExceededError);
  const e = error as LimitExceededError;
  expect(e.name).toBe('LimitExceededError');
  return {
    resourceType: e.resourceType,
    project: e.project,
    region: e.region,
    limit: e.limit,
    used: e.used,
    requested: e.requested,
    tracked: e.tracked,
  };
}

/** Calls `call` (which may throw synchronously or reject) and expects a LimitsUsageError. */
async function usageError(call: () => unknown, code: 'not-found' | 'invalid-request') {
  const error = await rejection(Promise.resolve().then(call));
  expect(error).toBeInstanceOf(LimitsUsageError);
  expect((error as LimitsUsageError).code).toBe(code);
  expect((error as LimitsUsageError).name).toBe('LimitsUsageError');
}

async function expectCounted(host: Host, project: string, used: number) {
  expect(await countRows(host.store, project)).toBe(used);
  expect((await host.mixin.getTracker(project, 'instances')).used).toBe(used);
}

describe.each(engines)('limits mixin on %s', (engine) => {
  let database: TestDatabase;
  let host: Host;
  let mixin: LimitsMixin;
  let store: Store;
  let clock: ManualClock;

  beforeEach(async () => {
    database = await createTestDatabase(engine);
    clock = new ManualClock();
    host = await openHost(database.url, { clock });
    mixin = host.mixin;
    store = host.store;
  });

  afterEach(async () => {
    await host.close();
    await database.drop();
  });

  it('counts inserts and deletes on a registered table by triggers, one row or many per statement', async () => {
    const created = await mixin.setLimit('p1', 'instances', 10);
    const now = new Date(clock.nowMs()).toISOString();
    expect(created).toEqual({
      region,
      project: 'p1',
      resourceType: 'instances',
      limit: 10,
      used: 0,
      generation: 1,
      createdAt: now,
      updatedAt: now,
      recountedAt: now,
    });

    await insertInstances(mixin, 'p1', ['a']);
    await expectCounted(host, 'p1', 1);

    // One statement, three rows: three trigger firings.
    await mixin.transaction((tx) =>
      tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)', [
        'b', 'p1', 'nb', 'c', 'p1', 'nc', 'd', 'p1', 'nd',
      ]),
    );
    await expectCounted(host, 'p1', 4);

    // INSERT … SELECT of two rows.
    await mixin.transaction((tx) =>
      tx.run("INSERT INTO instances (id, project_id, name) SELECT id || '-copy', project_id, name FROM instances WHERE id IN (?, ?)", [
        'a',
        'b',
      ]),
    );
    await expectCounted(host, 'p1', 6);

    await mixin.transaction((tx) => tx.run('DELETE FROM instances WHERE id = ?', ['a']));
    await expectCounted(host, 'p1', 5);

    // One statement deleting three rows.
    const deleted = await mixin.transaction((tx) =>
      tx.run('DELETE FROM instances WHERE project_id = ? AND id IN (?, ?, ?)', ['p1', 'b', 'c', 'a-copy']),
    );
    expect(deleted).toBe(3);
    await expectCounted(host, 'p1', 2);

    // Updates that do not move a row count nothing: another column, or the same project.
    await mixin.transaction((tx) => tx.run('UPDATE instances SET name = ? WHERE project_id = ?', ['renamed', 'p1']));
    await mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE project_id = ?', ['p1', 'p1']));
    await expectCounted(host, 'p1', 2);

    // Inserts and deletes in one transaction are summed.
    await mixin.transaction(async (tx) => {
      await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['e', 'p1', 'ne']);
      await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['f', 'p1', 'nf']);
      await tx.run('DELETE FROM instances WHERE id = ?', ['d']);
    });
    await expectCounted(host, 'p1', 3);
    expect(await rowIds(store, 'p1')).toEqual(['b-copy', 'e', 'f']);
    // The notes the triggers made were all folded in and removed.
    expect(await leftoverDeltas(store)).toBe(0);
  });

  it('moves a row between projects on an update of its project column', async () => {
    await mixin.setLimit('p1', 'instances', 5);
    await mixin.setLimit('p2', 'instances', 2);
    await insertInstances(mixin, 'p1', ['a', 'b', 'c']);

    await mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE id = ?', ['p2', 'a']));
    await expectCounted(host, 'p1', 2);
    await expectCounted(host, 'p2', 1);

    // Two rows moved by one statement into a project with room for one: refused, nothing moves.
    expect(
      await exceeded(mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE project_id = ?', ['p2', 'p1']))),
    ).toEqual({
      resourceType: 'instances',
      project: 'p2',
      region,
      limit: 2,
      ...(engine === 'postgres' ? { used: 1, requested: 2 } : { used: 2, requested: 1 }),
      tracked: true,
    });
    expect(await rowIds(store, 'p1')).toEqual(['b', 'c']);
    expect(await rowIds(store, 'p2')).toEqual(['a']);
    await expectCounted(host, 'p1', 2);
    await expectCounted(host, 'p2', 1);

    // Into a project with no tracker: fails closed.
    expect(
      await exceeded(mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE id = ?', ['p3', 'b']))),
    ).toEqual({ resourceType: 'instances', project: 'p3', region, limit: 0, used: 0, requested: 1, tracked: false });
    expect(await countRows(store, 'p3')).toBe(0);

    // A full project may swap a row with another project: its net change is zero. PostgreSQL
    // judges the net change at COMMIT, in any order; SQLite row by row, so the row goes out first.
    await mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE id = ?', ['p2', 'b']));
    await expectCounted(host, 'p2', 2);
    const swap = [['p2', 'c'], ['p1', 'a']];
    await mixin.transaction(async (tx) => {
      for (const move of engine === 'postgres' ? swap : swap.reverse()) {
        await tx.run('UPDATE instances SET project_id = ? WHERE id = ?', move);
      }
    });
    expect(await rowIds(store, 'p1')).toEqual(['a']);
    expect(await rowIds(store, 'p2')).toEqual(['b', 'c']);
    await expectCounted(host, 'p1', 1);
    await expectCounted(host, 'p2', 2);

    // Every row of p2 back to p1 in one statement.
    await mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE project_id = ?', ['p1', 'p2']));
    await expectCounted(host, 'p1', 3);
    await expectCounted(host, 'p2', 0);
    expect(await leftoverDeltas(store)).toBe(0);
  });

  it('counts an upsert that moves a row (ON CONFLICT DO UPDATE) once, as a move', async () => {
    await mixin.setLimit('p1', 'instances', 10);
    await mixin.setLimit('p2', 'instances', 10);
    await insertInstances(mixin, 'p1', ['a', 'b']);
    const upsert = 'INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, name = excluded.name';
    await mixin.transaction((tx) => tx.run(upsert, ['a', 'p2', 'moved']));
    await mixin.transaction((tx) => tx.run(upsert, ['b', 'p1', 'renamed']));
    await mixin.transaction((tx) => tx.run(upsert, ['c', 'p2', 'new']));
    expect(await rowIds(store, 'p1')).toEqual(['b']);
    expect(await rowIds(store, 'p2')).toEqual(['a', 'c']);
    await expectCounted(host, 'p1', 1);
    await expectCounted(host, 'p2', 2);
  });

  if (engine === 'sqlite') {
    // SQLite's REPLACE deletes the conflicting row without firing DELETE triggers (unless
    // recursive_triggers is on): the replaced row must still not be counted twice.
    it('counts INSERT OR REPLACE of an existing row as no create (SQLite)', async () => {
      await mixin.setLimit('p1', 'instances', 10);
      await insertInstances(mixin, 'p1', ['a', 'b']);
      await mixin.transaction((tx) => tx.run('INSERT OR REPLACE INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['b', 'p1', 'again']));
      expect(await rowIds(store, 'p1')).toEqual(['a', 'b']);
      await expectCounted(host, 'p1', 2);
    });
  }

  it('counts an unregistered table by declarations once its type has a count function', async () => {
    // One statement after another: a transaction is one connection (pg warns of overlapping queries).
    const insertVolumes = async (tx: Executor, project: string, ids: string[]) => {
      for (const id of ids) await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', [id, project]);
    };

    // No count for the type yet: no limit can be set.
    await usageError(() => mixin.setLimit('p1', 'volumes', 2), 'invalid-request');
    // And no tracker: a declared create fails closed, the host's row with it.
    expect(
      await exceeded(
        mixin.transaction(async (tx) => {
          await insertVolumes(tx, 'p1', ['v0']);
          tx.created('volumes', 'p1');
        }),
      ),
    ).toEqual({ resourceType: 'volumes', project: 'p1', region, limit: 0, used: 0, requested: 1, tracked: false });
    expect(await countRows(store, 'p1', 'volumes')).toBe(0);

    mixin.registerResourceType('volumes', async (tx, project) => {
      const row = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM volumes WHERE project = ?', [project]);
      return Number(row?.n ?? 0);
    });
    expect(await mixin.setLimit('p1', 'volumes', 2)).toMatchObject({ project: 'p1', resourceType: 'volumes', limit: 2, used: 0 });

    await mixin.transaction(async (tx) => {
      await insertVolumes(tx, 'p1', ['v1']);
      tx.created('volumes', 'p1');
    });
    expect((await mixin.getTracker('p1', 'volumes')).used).toBe(1);

    expect(
      await exceeded(
        mixin.transaction(async (tx) => {
          await insertVolumes(tx, 'p1', ['v2', 'v3']);
          tx.created('volumes', 'p1', 2);
        }),
      ),
    ).toEqual({ resourceType: 'volumes', project: 'p1', region, limit: 2, used: 1, requested: 2, tracked: true });
    expect(await countRows(store, 'p1', 'volumes')).toBe(1);
    expect((await mixin.getTracker('p1', 'volumes')).used).toBe(1);

    // Declarations are summed: +1 +1 -1 = +1.
    await mixin.transaction(async (tx) => {
      await insertVolumes(tx, 'p1', ['v2', 'v3']);
      await tx.run('DELETE FROM volumes WHERE id = ?', ['v1']);
      tx.created('volumes', 'p1');
      tx.created('volumes', 'p1');
      tx.deleted('volumes', 'p1');
    });
    expect(await countRows(store, 'p1', 'volumes')).toBe(2);
    expect((await mixin.getTracker('p1', 'volumes')).used).toBe(2);

    await mixin.transaction(async (tx) => {
      await tx.run('DELETE FROM volumes WHERE project = ?', ['p1']);
      tx.deleted('volumes', 'p1', 2);
    });
    expect((await mixin.getTracker('p1', 'volumes')).used).toBe(0);
    // The instances tracker of the project was never touched (there is none).
    expect(await storedTracker(store, 'p1', 'instances')).toBeUndefined();

    // The table is not registered: the host may write it directly (and then the tracker drifts
    // until a recount, which uses the count function): setLimit recounts it.
    await store.transaction((tx) => insertVolumes(tx, 'p1', ['w1', 'w2', 'w3']));
    expect((await mixin.getTracker('p1', 'volumes')).used).toBe(0);
    expect(await mixin.setLimit('p1', 'volumes', 5)).toMatchObject({ limit: 5, used: 3, generation: 2 });
  });

  it('counts and checks writes made outside mixin.transaction, with no session setting to get around it', async () => {
    await mixin.setLimit('p1', 'instances', 10);
    await mixin.setLimit('p2', 'instances', 1);
    await insertInstances(mixin, 'p1', ['a', 'b']);

    // The store's plain transactions: the database counts them itself.
    await store.transaction((tx) => tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['x', 'p1', 'nx']));
    await expectCounted(host, 'p1', 3);
    await store.transaction((tx) => tx.run('DELETE FROM instances WHERE id = ?', ['a']));
    await expectCounted(host, 'p1', 2);
    await store.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE id = ?', ['p2', 'b']));
    await expectCounted(host, 'p1', 1);
    await expectCounted(host, 'p2', 1);

    // Over the limit: refused, and an unregistered write before it rolls back with it.
    const over = (tx: Executor) => tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['y', 'p2', 'ny']);
    const error = await rejection(
      store.transaction(async (tx) => {
        await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v1', 'p2']);
        return over(tx);
      }),
    );
    expect(isLimitExceeded(error)).toMatchObject({ project: 'p2', limit: 1, used: 1, requested: 1, tracked: true });
    expect(await countRows(store, 'p2', 'volumes')).toBe(0);

    if (engine === 'postgres') {
      // Neither the setting an older allot trusted nor replica mode turns the triggers off.
      for (const setting of ["SELECT set_config('allot_limits.tx', 'forged', true)", "SELECT set_config('session_replication_role', 'replica', true)"]) {
        const bypass = await rejection(
          store.transaction(async (tx) => {
            await tx.get(setting);
            return over(tx);
          }),
        );
        expect(isLimitExceeded(bypass), setting).toMatchObject({ project: 'p2', limit: 1, used: 1 });
      }
    }
    expect(await rowIds(store, 'p2')).toEqual(['b']);
    await expectCounted(host, 'p2', 1);
    expect(await leftoverDeltas(store)).toBe(0);
  });

  it('cleans up deltas a finished transaction never applied, journals them and counts them as drift', async () => {
    await mixin.setLimit('p1', 'instances', 5);
    await insertInstances(mixin, 'p1', ['a', 'b']);
    // The apply trigger turned off by hand: the row is noted, never applied.
    const off = engine === 'postgres' ? 'ALTER TABLE allot_limit_deltas DISABLE TRIGGER allot_limit_apply' : 'DROP TRIGGER allot_limit_apply';
    await store.transaction((tx) => tx.run(off));
    await store.transaction((tx) => tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['c', 'p1', 'nc']));
    await mixin.registerTable({ table: 'instances', resourceType: 'instances', projectColumn: 'project_id' });
    expect(await leftoverDeltas(store)).toBe(1);
    expect(await mixin.driftCount()).toBe(0);

    expect(await mixin.cleanLeftovers()).toEqual([{ project: 'p1', resourceType: 'instances', rows: 1, delta: 1 }]);
    expect(await leftoverDeltas(store)).toBe(0);
    expect(await mixin.recount()).toEqual([{ region, project: 'p1', resourceType: 'instances', stored: 2, actual: 3 }]);
    expect(await mixin.driftCount()).toBe(2);
    expect((await mixin.readJournal({ project: 'p1' })).map((entry) => entry.action)).toEqual([
      'limit.set',
      'deltas.leftover',
      'recount.drift',
    ]);
    // The triggers are back: counted again.
    await store.transaction((tx) => tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['d', 'p1', 'nd']));
    await expectCounted(host, 'p1', 4);
  });

  it('throws LimitExceededError with exact fields and rolls back the host rows', async () => {
    await mixin.setLimit('p1', 'instances', 3);
    await insertInstances(mixin, 'p1', ['a', 'b']);

    expect(
      await exceeded(
        mixin.transaction(async (tx) => {
          await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v1', 'p1']);
          await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?), (?, ?, ?)', ['c', 'p1', 'nc', 'd', 'p1', 'nd']);
        }),
      ),
    ).toEqual({
      resourceType: 'instances',
      project: 'p1',
      region,
      limit: 3,
      // PostgreSQL applies the transaction's net change at COMMIT; SQLite checks row by row,
      // so it is the second row that is refused, after the first took the last slot.
      ...(engine === 'postgres' ? { used: 2, requested: 2 } : { used: 3, requested: 1 }),
      tracked: true,
    });
    expect(await rowIds(store, 'p1')).toEqual(['a', 'b']);
    expect(await countRows(store, 'p1', 'volumes')).toBe(0);
    await expectCounted(host, 'p1', 2);
    expect(await leftoverDeltas(store)).toBe(0);

    // Exactly up to the limit passes; one more does not.
    await insertInstances(mixin, 'p1', ['c']);
    await expectCounted(host, 'p1', 3);
    expect(await exceeded(insertInstances(mixin, 'p1', ['d']))).toEqual({
      resourceType: 'instances',
      project: 'p1',
      region,
      limit: 3,
      used: 3,
      requested: 1,
      tracked: true,
    });
    await expectCounted(host, 'p1', 3);
  });

  it('rolls back every project when the host wrote to two and only one is over', async () => {
    await mixin.setLimit('p1', 'instances', 5);
    await mixin.setLimit('p2', 'instances', 1);
    await insertInstances(mixin, 'p2', ['z']);
    const p1Before = await mixin.getTracker('p1', 'instances');
    const p2Before = await mixin.getTracker('p2', 'instances');

    // p1 (within its limit) sorts first, so its tracker moves before p2 is refused.
    expect(
      await exceeded(
        mixin.transaction(async (tx) => {
          await insertInstancesIn(tx, 'p1', ['a', 'b']);
          await insertInstancesIn(tx, 'p2', ['c']);
        }),
      ),
    ).toEqual({ resourceType: 'instances', project: 'p2', region, limit: 1, used: 1, requested: 1, tracked: true });
    expect(await rowIds(store, 'p1')).toEqual([]);
    expect(await rowIds(store, 'p2')).toEqual(['z']);
    expect(await mixin.getTracker('p1', 'instances')).toEqual(p1Before);
    expect(await mixin.getTracker('p2', 'instances')).toEqual(p2Before);

    // The same with a declared type next to it.
    mixin.registerResourceType('volumes', async () => 0);
    await mixin.setLimit('p1', 'volumes', 10);
    const volumesBefore = await mixin.getTracker('p1', 'volumes');
    expect(
      await exceeded(
        mixin.transaction(async (tx) => {
          await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v1', 'p1']);
          tx.created('volumes', 'p1');
          await insertInstancesIn(tx, 'p2', ['c']);
        }),
      ),
    ).toMatchObject({ project: 'p2', resourceType: 'instances' });
    expect(await mixin.getTracker('p1', 'volumes')).toEqual(volumesBefore);
    expect(await countRows(store, 'p1', 'volumes')).toBe(0);
  });

  it('leaves rows and trackers unchanged when the host transaction throws after its insert', async () => {
    await mixin.setLimit('p1', 'instances', 5);
    mixin.registerResourceType('volumes', async () => 0);
    await mixin.setLimit('p1', 'volumes', 5);
    await insertInstances(mixin, 'p1', ['a']);
    const before = await mixin.listTrackers();

    const failure = new Error('the host changed its mind');
    const error = await rejection(
      mixin.transaction(async (tx) => {
        await insertInstancesIn(tx, 'p1', ['b', 'c']);
        await tx.run('DELETE FROM instances WHERE id = ?', ['a']);
        await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v1', 'p1']);
        tx.created('volumes', 'p1');
        throw failure;
      }),
    );
    expect(error).toBe(failure);
    expect(await rowIds(store, 'p1')).toEqual(['a']);
    expect(await countRows(store, 'p1', 'volumes')).toBe(0);
    expect(await mixin.listTrackers()).toEqual(before);
    expect(await leftoverDeltas(store)).toBe(0);

    await insertInstances(mixin, 'p1', ['b']);
    await expectCounted(host, 'p1', 2);
  });

  it('fails closed for a create with no tracker, but lets deletes pass', async () => {
    expect(await exceeded(insertInstances(mixin, 'p1', ['a']))).toEqual({
      resourceType: 'instances',
      project: 'p1',
      region,
      limit: 0,
      used: 0,
      requested: 1,
      tracked: false,
    });
    expect(await countRows(store, 'p1')).toBe(0);
    expect(await mixin.listTrackers()).toEqual([]);

    await mixin.setLimit('p1', 'instances', 10);
    await insertInstances(mixin, 'p1', ['a', 'b', 'c']);
    expect(await mixin.deleteTracker('p1', 'instances')).toBe(true);

    expect(await exceeded(insertInstances(mixin, 'p1', ['d']))).toMatchObject({ tracked: false, limit: 0, used: 0, requested: 1 });
    await mixin.transaction((tx) => tx.run('DELETE FROM instances WHERE id IN (?, ?)', ['a', 'b']));
    expect(await rowIds(store, 'p1')).toEqual(['c']);
    // The delete made no tracker.
    expect(await mixin.listTrackers({ project: 'p1' })).toEqual([]);
    expect(await storedTracker(store, 'p1')).toBeUndefined();
    // A declared delete of a type with no tracker (and no count) passes too.
    await mixin.transaction(async (tx) => tx.deleted('gpus', 'p1', 3));
    expect(await mixin.listTrackers()).toEqual([]);
    // A moved row: its old project has no tracker (passes), its new one has room.
    await mixin.setLimit('p2', 'instances', 1);
    await mixin.transaction((tx) => tx.run('UPDATE instances SET project_id = ? WHERE id = ?', ['p2', 'c']));
    await expectCounted(host, 'p2', 1);
    expect(await mixin.listTrackers({ project: 'p1' })).toEqual([]);
  });

  it('setLimit recounts used from the host table', async () => {
    await mixin.setLimit('p1', 'instances', 100);
    await insertInstances(mixin, 'p1', ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    clock.advance(1000);
    expect(await mixin.deleteTracker('p1', 'instances')).toBe(true);
    clock.advance(1000);

    const fresh = await mixin.setLimit('p1', 'instances', 10);
    const freshAt = new Date(clock.nowMs()).toISOString();
    expect(fresh).toEqual({
      region,
      project: 'p1',
      resourceType: 'instances',
      limit: 10,
      used: 7,
      generation: 1,
      createdAt: freshAt,
      updatedAt: freshAt,
      recountedAt: freshAt,
    });

    clock.advance(1000);
    const raised = await mixin.setLimit('p1', 'instances', 12);
    const raisedAt = new Date(clock.nowMs()).toISOString();
    expect(raised).toEqual({ ...fresh, limit: 12, generation: 2, updatedAt: raisedAt, recountedAt: raisedAt });
    expect(await mixin.getTracker('p1', 'instances')).toEqual(raised);

    // Lowered to exactly the usage: full.
    clock.advance(1000);
    expect(await mixin.setLimit('p1', 'instances', 7)).toMatchObject({ limit: 7, used: 7, generation: 3 });
    expect(await exceeded(insertInstances(mixin, 'p1', ['h']))).toMatchObject({ limit: 7, used: 7, requested: 1 });

    const journal = await mixin.readJournal({ project: 'p1' });
    expect(journal.map((entry) => entry.action)).toEqual(['limit.set', 'tracker.deleted', 'limit.set', 'limit.set', 'limit.set']);
    expect(journal.every((entry) => entry.region === region && entry.resourceType === 'instances')).toBe(true);
    // A recount of a tracker whose count was right journals no drift.
    expect(journal.some((entry) => entry.action === 'recount.drift')).toBe(false);
  });

  it('accepts a limit below used; then only deletes pass until usage is back under it', async () => {
    await mixin.setLimit('p1', 'instances', 10);
    await insertInstances(mixin, 'p1', ['a', 'b', 'c', 'd', 'e']);
    expect(await mixin.setLimit('p1', 'instances', 3)).toMatchObject({ limit: 3, used: 5 });

    expect(await exceeded(insertInstances(mixin, 'p1', ['f']))).toEqual({
      resourceType: 'instances',
      project: 'p1',
      region,
      limit: 3,
      used: 5,
      requested: 1,
      tracked: true,
    });
    // Delete one and create two in one transaction: still a net create, refused (PostgreSQL
    // judges the net change; SQLite the first create, after the delete).
    expect(
      await exceeded(
        mixin.transaction(async (tx) => {
          await tx.run('DELETE FROM instances WHERE id = ?', ['a']);
          await insertInstancesIn(tx, 'p1', ['f', 'g']);
        }),
      ),
    ).toMatchObject({ limit: 3, used: engine === 'postgres' ? 5 : 4, requested: 1 });
    await expectCounted(host, 'p1', 5);

    await mixin.transaction((tx) => tx.run('DELETE FROM instances WHERE id = ?', ['a']));
    await expectCounted(host, 'p1', 4);
    expect(await exceeded(insertInstances(mixin, 'p1', ['f']))).toMatchObject({ limit: 3, used: 4, requested: 1 });
    await mixin.transaction((tx) => tx.run('DELETE FROM instances WHERE id IN (?, ?)', ['b', 'c']));
    await expectCounted(host, 'p1', 2);
    await insertInstances(mixin, 'p1', ['f']);
    await expectCounted(host, 'p1', 3);
    expect(await exceeded(insertInstances(mixin, 'p1', ['g']))).toMatchObject({ limit: 3, used: 3, requested: 1 });

    expect(await mixin.setLimit('p1', 'instances', 0)).toMatchObject({ limit: 0, used: 3 });
    await mixin.transaction((tx) => tx.run('DELETE FROM instances WHERE project_id = ?', ['p1']));
    await expectCounted(host, 'p1', 0);
    expect(await exceeded(insertInstances(mixin, 'p1', ['h']))).toMatchObject({ limit: 0, used: 0, requested: 1, tracked: true });
  });

  it('recount repairs trackers corrupted by hand and journals each drift exactly', async () => {
    await mixin.setLimit('p1', 'instances', 10);
    await mixin.setLimit('p2', 'instances', 10);
    await insertInstances(mixin, 'p1', ['a', 'b', 'c']);
    await insertInstances(mixin, 'p2', ['d']);
    await store.transaction((tx) => tx.run('UPDATE allot_limit_trackers SET used = ? WHERE project = ?', [8, 'p1']));
    await store.transaction((tx) => tx.run('UPDATE allot_limit_trackers SET used = ? WHERE project = ?', [0, 'p2']));
    clock.advance(60_000);
    const at = new Date(clock.nowMs()).toISOString();

    const drifts = await mixin.recount();
    expect([...drifts].sort((x, y) => x.project.localeCompare(y.project))).toEqual([
      { region, project: 'p1', resourceType: 'instances', stored: 8, actual: 3 },
      { region, project: 'p2', resourceType: 'instances', stored: 0, actual: 1 },
    ]);
    expect(await mixin.getTracker('p1', 'instances')).toMatchObject({ used: 3, limit: 10, recountedAt: at });
    expect(await mixin.getTracker('p2', 'instances')).toMatchObject({ used: 1, limit: 10, recountedAt: at });

    const p1Journal = await mixin.readJournal({ project: 'p1' });
    expect(p1Journal.filter((entry) => entry.action === 'recount.drift')).toEqual([
      { at, region, project: 'p1', resourceType: 'instances', action: 'recount.drift', detail: { stored: 8, actual: 3 } },
    ]);
    expect((await mixin.readJournal({ resourceType: 'instances' })).filter((e) => e.action === 'recount.drift')).toHaveLength(2);

    // Nothing drifted since: nothing found, nothing journaled.
    clock.advance(1000);
    expect(await mixin.recount()).toEqual([]);
    expect((await mixin.readJournal()).filter((e) => e.action === 'recount.drift')).toHaveLength(2);

    // A filtered recount touches only what it names.
    await store.transaction((tx) => tx.run('UPDATE allot_limit_trackers SET used = ? WHERE project = ?', [9, 'p1']));
    expect(await mixin.recount({ project: 'p2' })).toEqual([]);
    expect(await storedTracker(store, 'p1')).toEqual({ limit: 10, used: 9 });
    expect(await mixin.recount({ project: 'p1', resourceType: 'instances' })).toEqual([
      { region, project: 'p1', resourceType: 'instances', stored: 9, actual: 3 },
    ]);
    await expectCounted(host, 'p1', 3);
    // A tracker left low by hand would let too much through; after the recount it does not.
    await insertInstances(mixin, 'p1', ['e', 'f', 'g', 'h', 'i', 'j', 'k']);
    await expectCounted(host, 'p1', 10);
    expect(await exceeded(insertInstances(mixin, 'p1', ['l']))).toMatchObject({ limit: 10, used: 10, requested: 1 });
  });

  it('recounts a declared type with its count function', async () => {
    mixin.registerResourceType('volumes', async (tx, project) => {
      const row = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM volumes WHERE project = ?', [project]);
      return Number(row?.n ?? 0);
    });
    await mixin.setLimit('p1', 'volumes', 4);
    await store.transaction(async (tx) => {
      await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v1', 'p1']);
      await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v2', 'p1']);
    });
    expect(await mixin.recount({ resourceType: 'volumes' })).toEqual([
      { region, project: 'p1', resourceType: 'volumes', stored: 0, actual: 2 },
    ]);
    expect((await mixin.getTracker('p1', 'volumes')).used).toBe(2);
  });

  it('lists trackers by project and type, of its own region only, and deletes them', async () => {
    mixin.registerResourceType('volumes', async () => 0);
    await mixin.setLimit('p2', 'instances', 2);
    await mixin.setLimit('p1', 'volumes', 3);
    await mixin.setLimit('p1', 'instances', 1);
    const key = (t: { project: string; resourceType: string; limit: number }) => `${t.project}/${t.resourceType}=${t.limit}`;

    expect((await mixin.listTrackers()).map(key)).toEqual(['p1/instances=1', 'p1/volumes=3', 'p2/instances=2']);
    expect((await mixin.listTrackers({ project: 'p1' })).map(key)).toEqual(['p1/instances=1', 'p1/volumes=3']);
    expect((await mixin.listTrackers({ resourceType: 'instances' })).map(key)).toEqual(['p1/instances=1', 'p2/instances=2']);
    expect((await mixin.listTrackers({ project: 'p2', resourceType: 'instances' })).map(key)).toEqual(['p2/instances=2']);
    expect(await mixin.listTrackers({ project: 'p2', resourceType: 'volumes' })).toEqual([]);
    expect(await mixin.listTrackers({ project: 'p9' })).toEqual([]);
    expect(await mixin.listTrackers()).toEqual(
      await Promise.all([
        mixin.getTracker('p1', 'instances'),
        mixin.getTracker('p1', 'volumes'),
        mixin.getTracker('p2', 'instances'),
      ]),
    );

    // Another region's mixin on the same database keeps its own trackers.
    const other = await openLimits({ db: store, region: 'us-1', tables: [instancesTable], clock });
    await other.setLimit('p1', 'instances', 9);
    expect((await other.listTrackers()).map(key)).toEqual(['p1/instances=9']);
    expect((await other.listTrackers())[0]!.region).toBe('us-1');
    expect((await mixin.listTrackers({ project: 'p1', resourceType: 'instances' })).map(key)).toEqual(['p1/instances=1']);
    // A create counts against the region of the mixin it ran in.
    await insertInstances(other, 'p1', ['a', 'b']);
    expect((await other.getTracker('p1', 'instances')).used).toBe(2);
    expect((await mixin.getTracker('p1', 'instances')).used).toBe(0);

    clock.advance(1000);
    expect(await mixin.deleteTracker('p1', 'volumes')).toBe(true);
    expect(await mixin.deleteTracker('p1', 'volumes')).toBe(false);
    expect(await mixin.deleteTracker('p7', 'instances')).toBe(false);
    await usageError(() => mixin.getTracker('p1', 'volumes'), 'not-found');
    expect((await mixin.listTrackers()).map(key)).toEqual(['p1/instances=1', 'p2/instances=2']);
    expect((await other.listTrackers()).map(key)).toEqual(['p1/instances=9']);
    const deletions = (await mixin.readJournal({ project: 'p1', resourceType: 'volumes' })).filter(
      (entry) => entry.action === 'tracker.deleted',
    );
    expect(deletions).toHaveLength(1);
    expect(deletions[0]).toMatchObject({ at: new Date(clock.nowMs()).toISOString(), region, project: 'p1', resourceType: 'volumes' });
    expect(await mixin.readJournal({ project: 'p7' })).toEqual([]);
  });

  it('throws LimitsUsageError for bad names, bad limits and unknown types', async () => {
    for (const project of ['', 'bad name', '-leading-dash', 'x'.repeat(129), 'semi;colon', 'é']) {
      await usageError(() => mixin.setLimit(project, 'instances', 1), 'invalid-request');
    }
    for (const limit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1, '5' as unknown as number]) {
      await usageError(() => mixin.setLimit('p1', 'instances', limit), 'invalid-request');
    }
    await usageError(() => mixin.setLimit('p1', 'gpus', 1), 'invalid-request');
    await usageError(() => mixin.setLimit('p1', 'bad type', 1), 'invalid-request');
    await usageError(() => mixin.registerResourceType('bad type', async () => 0), 'invalid-request');
    await usageError(() => mixin.getTracker('p1', 'instances'), 'not-found');

    // Declarations are checked too, and the transaction rolls back.
    for (const declare of [
      (tx: LimitsTransaction) => tx.created('bad type', 'p1'),
      (tx: LimitsTransaction) => tx.created('instances', 'bad project'),
      (tx: LimitsTransaction) => tx.created('instances', 'p1', -1),
      (tx: LimitsTransaction) => tx.created('instances', 'p1', 1.5),
    ]) {
      await usageError(
        () =>
          mixin.transaction(async (tx) => {
            await tx.run('INSERT INTO volumes (id, project) VALUES (?, ?)', ['v1', 'p1']);
            declare(tx);
          }),
        'invalid-request',
      );
    }
    expect(await countRows(store, 'p1', 'volumes')).toBe(0);

    await usageError(() => openLimits({ db: store, region: 'bad region' }), 'invalid-request');
    await usageError(
      () => openLimits({ db: store, region, tables: [{ table: 'instances; DROP TABLE x', resourceType: 'instances', projectColumn: 'project_id' }] }),
      'invalid-request',
    );
    await usageError(
      () => openLimits({ db: store, region, tables: [{ table: 'instances', resourceType: 'Instances', projectColumn: 'project_id' }] }),
      'invalid-request',
    );
    // Nothing was created along the way.
    expect(await mixin.listTrackers()).toEqual([]);
    expect(await mixin.readJournal()).toEqual([]);
    // And the mixin still works.
    expect(await mixin.setLimit('p1', 'instances', Number.MAX_SAFE_INTEGER)).toMatchObject({ limit: Number.MAX_SAFE_INTEGER, used: 0 });
  });

  describe('the admin plugin', () => {
    let app: FastifyInstance;

    beforeEach(async () => {
      app = Fastify();
      await app.register(limitsAdminRoutes, { mixin, authorize: (request) => request.headers['x-admin'] === 'letmein' });
      await app.ready();
    });

    afterEach(async () => {
      await app.close();
    });

    const admin = { 'x-admin': 'letmein' };
    const routes = [
      { method: 'GET', url: '/admin/trackers' },
      { method: 'GET', url: '/admin/trackers?project=p1' },
      { method: 'GET', url: '/admin/trackers/p1/instances' },
      { method: 'GET', url: '/admin/trackers/journal' },
      { method: 'POST', url: '/admin/trackers/recount' },
      { method: 'POST', url: '/admin/trackers/recount', payload: { project: 'p1' } },
      { method: 'PUT', url: '/admin/limits/p1/instances', payload: { limit: 9 } },
      { method: 'PUT', url: '/admin/limits/p2/instances', payload: { limit: 9 } },
      { method: 'DELETE', url: '/admin/limits/p1/instances' },
    ] as const;

    it('answers 404 on every route without the header, as if it did not exist, and changes nothing', async () => {
      await mixin.setLimit('p1', 'instances', 5);
      await insertInstances(mixin, 'p1', ['a', 'b']);
      await store.transaction((tx) => tx.run('UPDATE allot_limit_trackers SET used = ? WHERE project = ?', [4, 'p1']));
      const trackers = await mixin.listTrackers();
      const journal = await mixin.readJournal();
      /** A 404 answer with its URL taken out, to compare with the app's answer for an unknown route. */
      const shape = (response: { statusCode: number; headers: Record<string, unknown>; body: string }, url: string) => ({
        status: response.statusCode,
        contentType: response.headers['content-type'],
        body: response.body.split(url.replace(/\?.*/, '')).join('<url>'),
      });

      for (const route of routes) {
        const unknown = { ...route, url: route.url.replace('/admin/', '/admin/nowhere/') };
        for (const headers of [{}, { 'x-admin': 'wrong' }, { authorization: 'Bearer letmein' }]) {
          const response = await app.inject({ ...route, headers });
          expect(response.statusCode, `${route.method} ${route.url}`).toBe(404);
          expect(response.body).not.toContain('"used"');
          expect(response.body).not.toContain('"items"');
          expect(response.body).not.toContain('"drifts"');
          const missing = await app.inject({ ...unknown, headers });
          expect(missing.statusCode).toBe(404);
          expect(shape(response, route.url)).toEqual(shape(missing, unknown.url));
        }
      }
      // The refused recount, PUTs and DELETE did nothing.
      expect(await mixin.listTrackers()).toEqual(trackers);
      expect(await storedTracker(store, 'p1')).toEqual({ limit: 5, used: 4 });
      expect(await mixin.readJournal()).toEqual(journal);
    });

    it("answers a refused request with the host's own 404 problem", async () => {
      const other = Fastify();
      other.setNotFoundHandler((request, reply) =>
        reply.code(404).type('application/problem+json').send({ type: '/problems/not-found', status: 404, detail: 'no such route' }),
      );
      await other.register(limitsAdminRoutes, { mixin, authorize: (request) => request.headers['x-admin'] === 'letmein' });
      await other.ready();
      try {
        await mixin.setLimit('p1', 'instances', 5);
        for (const route of routes) {
          const response = await other.inject({ ...route });
          expect(response.statusCode).toBe(404);
          expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(response.json()).toEqual({ type: '/problems/not-found', status: 404, detail: 'no such route' });
        }
        expect((await other.inject({ method: 'GET', url: '/admin/trackers', headers: admin })).json().items).toHaveLength(1);
        expect(await storedTracker(store, 'p1')).toEqual({ limit: 5, used: 0 });
      } finally {
        await other.close();
      }
    });

    it('serves every route with the header', async () => {
      await mixin.setLimit('p1', 'instances', 5);
      await insertInstances(mixin, 'p1', ['a', 'b']);
      const json = (value: unknown) => JSON.parse(JSON.stringify(value));

      let response = await app.inject({ method: 'GET', url: '/admin/trackers', headers: admin });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ drifts: 0, items: json(await mixin.listTrackers()) });
      expect(response.json().items[0]).toMatchObject({ project: 'p1', resourceType: 'instances', limit: 5, used: 2 });

      response = await app.inject({ method: 'GET', url: '/admin/trackers?project=p2', headers: admin });
      expect(response.json()).toEqual({ drifts: 0, items: [] });
      response = await app.inject({ method: 'GET', url: '/admin/trackers?resourceType=instances&project=p1', headers: admin });
      expect(response.json().items).toHaveLength(1);
      response = await app.inject({ method: 'GET', url: '/admin/trackers?project=bad%20name', headers: admin });
      expect(response.statusCode).toBe(400);

      response = await app.inject({ method: 'GET', url: '/admin/trackers/p1/instances', headers: admin });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual(json(await mixin.getTracker('p1', 'instances')));
      response = await app.inject({ method: 'GET', url: '/admin/trackers/p9/instances', headers: admin });
      expect(response.statusCode).toBe(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);

      response = await app.inject({ method: 'GET', url: '/admin/trackers/journal?project=p1', headers: admin });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ items: json(await mixin.readJournal({ project: 'p1' })) });
      expect(response.json().items.map((entry: { action: string }) => entry.action)).toEqual(['limit.set']);

      // PUT creates (and recounts) a tracker; bad bodies and unknown types are 400.
      response = await app.inject({ method: 'PUT', url: '/admin/limits/p2/instances', headers: admin, payload: { limit: 3 } });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ region, project: 'p2', resourceType: 'instances', limit: 3, used: 0, generation: 1 });
      response = await app.inject({ method: 'PUT', url: '/admin/limits/p1/instances', headers: admin, payload: { limit: 1 } });
      expect(response.json()).toMatchObject({ limit: 1, used: 2, generation: 2 });
      for (const payload of [{ limit: -1 }, { limit: 1.5 }, {}]) {
        response = await app.inject({ method: 'PUT', url: '/admin/limits/p1/instances', headers: admin, payload });
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      response = await app.inject({ method: 'PUT', url: '/admin/limits/p1/gpus', headers: admin, payload: { limit: 3 } });
      expect(response.statusCode).toBe(400);
      response = await app.inject({ method: 'PUT', url: '/admin/limits/bad%20name/instances', headers: admin, payload: { limit: 3 } });
      expect(response.statusCode).toBe(400);
      expect(await storedTracker(store, 'p1')).toEqual({ limit: 1, used: 2 });

      // Recount: without a body, and for one project.
      await store.transaction((tx) => tx.run('UPDATE allot_limit_trackers SET used = ? WHERE project = ?', [7, 'p1']));
      response = await app.inject({ method: 'POST', url: '/admin/trackers/recount', headers: admin, payload: { project: 'p2' } });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ drifts: [], leftovers: [] });
      response = await app.inject({ method: 'POST', url: '/admin/trackers/recount', headers: admin });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        drifts: [{ region, project: 'p1', resourceType: 'instances', stored: 7, actual: 2 }],
        leftovers: [],
      });
      response = await app.inject({ method: 'GET', url: '/admin/trackers', headers: admin });
      expect(response.json().drifts).toBe(1);
      expect(await storedTracker(store, 'p1')).toEqual({ limit: 1, used: 2 });

      response = await app.inject({ method: 'DELETE', url: '/admin/limits/p2/instances', headers: admin });
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');
      response = await app.inject({ method: 'DELETE', url: '/admin/limits/p2/instances', headers: admin });
      expect(response.statusCode).toBe(404);
      expect(await storedTracker(store, 'p2')).toBeUndefined();
    });

    it('mounts under another base path', async () => {
      const other = Fastify();
      await other.register(limitsAdminRoutes, { mixin, authorize: async (request) => request.headers['x-admin'] === 'letmein', basePath: '/ops' });
      await other.ready();
      try {
        await mixin.setLimit('p1', 'instances', 5);
        const listed = await other.inject({ method: 'GET', url: '/ops/trackers', headers: admin });
        expect(listed.statusCode, other.printRoutes()).toBe(200);
        expect(listed.json().items).toHaveLength(1);
        expect((await other.inject({ method: 'GET', url: '/ops/trackers' })).statusCode).toBe(404);
        expect((await other.inject({ method: 'PUT', url: '/ops/limits/p1/instances', payload: { limit: 1 } })).statusCode).toBe(404);
        expect(await storedTracker(store, 'p1')).toEqual({ limit: 5, used: 0 });
        expect((await other.inject({ method: 'GET', url: '/admin/trackers', headers: admin })).statusCode).toBe(404);
      } finally {
        await other.close();
      }
    });
  });
});

/** Inserts rows inside a limits transaction the test already holds. */
async function insertInstancesIn(tx: Executor, project: string, ids: string[]) {
  for (const id of ids) await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', [id, project, `n-${id}`]);
}
