/**
 * The limits mixin: a library a host service embeds to keep, in its *own* database, one hidden
 * tracker per (region, project, resource type) — a limit and a count of the host's resources —
 * updated in the same transaction as the resources, so the count can never drift.
 *
 * The host writes its rows inside `mixin.transaction(work)`. Creates and deletes are counted
 * two ways: on registered tables by triggers (the host declares nothing), and by explicit
 * `tx.created()` / `tx.deleted()`. When `work` is done the mixin applies the summed deltas with
 * one conditional UPDATE per tracker; one that would pass its limit throws LimitExceededError
 * and the whole transaction — the host's rows included — rolls back. Each tracker's row lock
 * serializes creates in one project and type; other projects never wait (on PostgreSQL; SQLite
 * has one writer).
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../domain/clock.js';
import { quantityMax } from '../domain/constants.js';
import { migrate } from '../store/migrations.js';
import { openStore } from '../store/open.js';
import type { Executor, SqlValue, Store } from '../store/store.js';
import { LimitExceededError, LimitsUsageError } from './errors.js';
import { limitsMigrations, limitsMigrationsTable } from './migrations.js';
import { checkRegisteredTable, type RegisteredTable } from './triggers.js';

export interface LimitsOptions {
  /** The host's database: `sqlite:PATH`, `postgres://…`, or an open allot store. */
  db: string | Store;
  /** The region this host serves: every tracker it keeps is of this region. */
  region: string;
  /** Host tables whose inserts and deletes count as creates and deletes of a resource type. */
  tables?: RegisteredTable[];
  clock?: Clock;
}

/** What the host's transaction code gets: its usual executor, plus declarations. */
export interface LimitsTransaction extends Executor {
  /** Declares `count` resources of `resourceType` created in `project` (on unregistered tables). */
  created(resourceType: string, project: string, count?: number): void;
  /** Declares `count` resources of `resourceType` deleted in `project`. */
  deleted(resourceType: string, project: string, count?: number): void;
}

export interface Tracker {
  region: string;
  project: string;
  resourceType: string;
  limit: number;
  used: number;
  generation: number;
  createdAt: string;
  updatedAt: string;
  recountedAt: string | null;
}

export interface Drift {
  region: string;
  project: string;
  resourceType: string;
  /** What the tracker held. */
  stored: number;
  /** What the host's tables hold: the tracker now holds this. */
  actual: number;
}

export interface LimitsJournalEntry {
  at: string;
  region: string;
  project: string;
  resourceType: string;
  action: 'limit.set' | 'recount.drift' | 'tracker.deleted';
  detail: Record<string, unknown>;
}

/** Counts the host's resources of one type in one project, inside the given transaction. */
export type CountFunction = (tx: Executor, project: string) => Promise<number>;

interface TrackerRow {
  region: string;
  project: string;
  resource_type: string;
  limit_value: number;
  used: number;
  generation: number;
  created_at: number;
  updated_at: number;
  recounted_at: number | null;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !namePattern.test(value)) {
    throw new LimitsUsageError('invalid-request', `${field} must match ${namePattern.source}`);
  }
  return value;
}

const trackerOf = (row: TrackerRow): Tracker => ({
  region: row.region,
  project: row.project,
  resourceType: row.resource_type,
  limit: row.limit_value,
  used: row.used,
  generation: row.generation,
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
  recountedAt: row.recounted_at === null ? null : new Date(row.recounted_at).toISOString(),
});

export async function openLimits(options: LimitsOptions): Promise<LimitsMixin> {
  const store = typeof options.db === 'string' ? openStore(options.db) : options.db;
  const clock = options.clock ?? systemClock;
  const mixin = new LimitsMixin(store, checkName('region', options.region), clock, typeof options.db === 'string');
  try {
    await migrate(store, clock.nowMs(), limitsMigrations, limitsMigrationsTable);
    for (const table of options.tables ?? []) await mixin.registerTable(table);
  } catch (error) {
    if (typeof options.db === 'string') await store.close();
    throw error;
  }
  return mixin;
}

export class LimitsMixin {
  private readonly counts = new Map<string, CountFunction>();

  constructor(
    readonly store: Store,
    readonly region: string,
    readonly clock: Clock,
    /** The mixin opened the store from a URL, so closing the mixin closes it. */
    private readonly ownsStore = false,
  ) {}

  /**
   * Counts inserts and deletes on `table` (and rows moved between projects) as creates and
   * deletes of `resourceType`, by triggers; the recount counts its rows. Idempotent.
   */
  async registerTable(registered: RegisteredTable): Promise<void> {
    const { table, resourceType, projectColumn } = checkRegisteredTable(registered);
    const triggers = this.store.dialect.limitTriggers;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.store.transaction((tx) => triggers.install(tx, registered));
        break;
      } catch (error) {
        // Another host process created them at the same moment: look again.
        if (attempt >= 5 || !triggers.isInstallRace(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.floor(Math.random() * 20)));
      }
    }
    this.registerResourceType(resourceType, async (tx, project) => {
      const row = await tx.get<{ n: number }>(
        `SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ${table} WHERE ${projectColumn} = ?`,
        [project],
      );
      return Number(row?.n ?? 0);
    });
  }

  /** How the true recount counts a resource type the host declares itself. */
  registerResourceType(resourceType: string, count: CountFunction): void {
    this.counts.set(checkName('resourceType', resourceType), count);
  }

  /**
   * Runs `work` in one transaction of the host's database and applies its creates and
   * deletes to the trackers before committing. Throws LimitExceededError (after rolling
   * everything back) if a tracker would pass its limit. Like every allot transaction, `work`
   * may run again after a serialization failure or deadlock, so it must do nothing outside
   * the transaction.
   */
  transaction<T>(work: (tx: LimitsTransaction) => Promise<T>): Promise<T> {
    const triggers = this.store.dialect.limitTriggers;
    return this.store.transaction(async (tx) => {
      const token = randomUUID();
      await triggers.begin(tx, token);
      const declared = new Map<string, number>();
      const declare = (resourceType: string, project: string, count: number, sign: 1 | -1) => {
        if (!Number.isInteger(count) || count < 0) {
          throw new LimitsUsageError('invalid-request', `count must be a non-negative integer, got ${count}`);
        }
        const key = `${checkName('resourceType', resourceType)}\u0000${checkName('project', project)}`;
        declared.set(key, (declared.get(key) ?? 0) + sign * count);
      };
      const handle: LimitsTransaction = {
        all: <Row>(sql: string, params?: readonly SqlValue[]) => tx.all<Row>(sql, params),
        get: <Row>(sql: string, params?: readonly SqlValue[]) => tx.get<Row>(sql, params),
        run: (sql: string, params?: readonly SqlValue[]) => tx.run(sql, params),
        write: (writes) => tx.write(writes),
        selectMany: (queries) => tx.selectMany(queries),
        created: (resourceType, project, count = 1) => declare(resourceType, project, count, 1),
        deleted: (resourceType, project, count = 1) => declare(resourceType, project, count, -1),
      };
      const result = await work(handle);
      const noted = await tx.all<{ resource_type: string; project: string; delta: number }>(
        `SELECT resource_type, project, CAST(SUM(delta) AS BIGINT) AS delta FROM allot_limit_deltas
          WHERE tx = ? GROUP BY resource_type, project`,
        [token],
      );
      if (noted.length > 0) await tx.run('DELETE FROM allot_limit_deltas WHERE tx = ?', [token]);
      await triggers.end(tx);
      for (const row of noted) {
        const key = `${row.resource_type}\u0000${row.project}`;
        declared.set(key, (declared.get(key) ?? 0) + Number(row.delta));
      }
      // In one order everywhere, so two transactions never deadlock on each other's trackers.
      for (const key of [...declared.keys()].sort()) {
        const delta = declared.get(key)!;
        if (delta === 0) continue;
        const [resourceType, project] = key.split('\u0000') as [string, string];
        await this.apply(tx, resourceType, project, delta);
      }
      return result;
    });
  }

  /** Moves one tracker by `delta`, or throws LimitExceededError. */
  private async apply(tx: Executor, resourceType: string, project: string, delta: number): Promise<void> {
    const nowMs = this.clock.nowMs();
    const move = () =>
      tx.run(
        `UPDATE allot_limit_trackers
          SET used = CASE WHEN used + ? < 0 THEN 0 ELSE used + ? END, updated_at = ?
          WHERE region = ? AND project = ? AND resource_type = ?
            AND (CAST(? AS BIGINT) <= 0 OR used + ? <= limit_value)`,
        [delta, delta, nowMs, this.region, project, resourceType, delta, delta],
      );
    if ((await move()) === 1) return;
    const row = await this.lockTracker(tx, project, resourceType);
    if (row) {
      // Judged again under the lock: a limit raised in between lets it through.
      if (row.used + delta <= row.limit_value && (await move()) === 1) return;
      throw new LimitExceededError(resourceType, project, this.region, row.limit_value, row.used, delta);
    }
    if (delta > 0) throw new LimitExceededError(resourceType, project, this.region, 0, 0, delta, false);
    // Deletes of a type with no tracker count for nothing — unless a tracker is being created
    // right now (its recount may have counted these rows). On PostgreSQL that tracker is not
    // visible yet; inserting one waits for it: then move it. Otherwise remove the one made here.
    if ((await this.insertTracker(tx, project, resourceType, 0, 0, nowMs)) === 1) {
      await tx.run('DELETE FROM allot_limit_trackers WHERE region = ? AND project = ? AND resource_type = ?', [
        this.region,
        project,
        resourceType,
      ]);
      return;
    }
    await move();
  }

  private insertTracker(tx: Executor, project: string, resourceType: string, limit: number, used: number, nowMs: number) {
    return tx.run(
      `INSERT INTO allot_limit_trackers (region, project, resource_type, limit_value, used, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (region, project, resource_type) DO NOTHING`,
      [this.region, project, resourceType, limit, used, nowMs, nowMs],
    );
  }

  private lockTracker(tx: Executor, project: string, resourceType: string) {
    return tx.get<TrackerRow>(
      `SELECT * FROM allot_limit_trackers WHERE region = ? AND project = ? AND resource_type = ?${this.store.dialect.lockRowsSuffix}`,
      [this.region, project, resourceType],
    );
  }

  /**
   * Creates or updates a tracker's limit, and recounts its `used` from the host's tables in
   * the same transaction (a drift found on an existing tracker is journaled). A limit below
   * `used` is kept: the project is then over its limit and only deletes pass.
   */
  async setLimit(project: string, resourceType: string, limit: number): Promise<Tracker> {
    checkName('project', project);
    const count = this.countOf(resourceType);
    if (!Number.isInteger(limit) || limit < 0 || limit > quantityMax) {
      throw new LimitsUsageError('invalid-request', `limit must be an integer from 0 to ${quantityMax}`);
    }
    return this.store.transaction(async (tx) => {
      const nowMs = this.clock.nowMs();
      const created = (await this.insertTracker(tx, project, resourceType, limit, 0, nowMs)) === 1;
      const before = await this.lockTracker(tx, project, resourceType);
      if (!created) {
        await tx.run(
          `UPDATE allot_limit_trackers SET limit_value = ?, generation = generation + 1, updated_at = ?
            WHERE region = ? AND project = ? AND resource_type = ?`,
          [limit, nowMs, this.region, project, resourceType],
        );
      }
      await this.journal(tx, project, resourceType, 'limit.set', {
        before: created ? null : before!.limit_value,
        after: limit,
      });
      await this.recountOne(tx, project, resourceType, count, created);
      return trackerOf((await this.lockTracker(tx, project, resourceType))!);
    });
  }

  /** Removes a tracker (its limit is gone): the project can create no more of the type. */
  deleteTracker(project: string, resourceType: string): Promise<boolean> {
    return this.store.transaction(async (tx) => {
      const row = await this.lockTracker(tx, project, resourceType);
      if (!row) return false;
      await tx.run('DELETE FROM allot_limit_trackers WHERE region = ? AND project = ? AND resource_type = ?', [
        this.region,
        project,
        resourceType,
      ]);
      await this.journal(tx, project, resourceType, 'tracker.deleted', { limit: row.limit_value, used: row.used });
      return true;
    });
  }

  getTracker(project: string, resourceType: string): Promise<Tracker> {
    return this.store.transaction(
      async (tx) => {
        const row = await tx.get<TrackerRow>(
          'SELECT * FROM allot_limit_trackers WHERE region = ? AND project = ? AND resource_type = ?',
          [this.region, project, resourceType],
        );
        if (!row) throw new LimitsUsageError('not-found', `no tracker for ${resourceType} in project ${project}`);
        return trackerOf(row);
      },
      { readOnly: true },
    );
  }

  /** This region's trackers, by project and type; optionally of one project or type. */
  listTrackers(filter: { project?: string; resourceType?: string } = {}): Promise<Tracker[]> {
    const { where, params } = this.where(filter);
    return this.store.transaction(
      async (tx) =>
        (
          await tx.all<TrackerRow>(
            `SELECT * FROM allot_limit_trackers WHERE ${where} ORDER BY project, resource_type`,
            params,
          )
        ).map(trackerOf),
      { readOnly: true },
    );
  }

  /**
   * The true recount: for each tracker (of one project or type, or all), locks it, counts the
   * host's resources and sets `used` to the count, in one transaction per tracker. Returns the
   * drifts it found (each one journaled).
   */
  async recount(filter: { project?: string; resourceType?: string } = {}): Promise<Drift[]> {
    const drifts: Drift[] = [];
    for (const tracker of await this.listTrackers(filter)) {
      const count = this.counts.get(tracker.resourceType);
      if (!count) continue;
      const drift = await this.store.transaction(async (tx) =>
        this.recountOne(tx, tracker.project, tracker.resourceType, count, false),
      );
      if (drift) drifts.push(drift);
    }
    return drifts;
  }

  /** The mixin's journal for one tracker (or all), oldest first. */
  readJournal(filter: { project?: string; resourceType?: string } = {}, limit = 1000): Promise<LimitsJournalEntry[]> {
    const { where, params } = this.where(filter);
    return this.store.transaction(
      async (tx) =>
        (
          await tx.all<{ at: number; region: string; project: string; resource_type: string; action: LimitsJournalEntry['action']; detail: string }>(
            `SELECT * FROM allot_limit_journal WHERE ${where} ORDER BY at LIMIT ?`,
            [...params, limit],
          )
        ).map((row) => ({
          at: new Date(row.at).toISOString(),
          region: row.region,
          project: row.project,
          resourceType: row.resource_type,
          action: row.action,
          detail: JSON.parse(row.detail) as Record<string, unknown>,
        })),
      { readOnly: true },
    );
  }

  /** Closes the store if the mixin opened it (a store passed in belongs to the host). */
  async close(): Promise<void> {
    if (this.ownsStore) await this.store.close();
  }

  /** This region's rows, of one project or type if the filter names them. */
  private where(filter: { project?: string; resourceType?: string }): { where: string; params: SqlValue[] } {
    const conditions = ['region = ?'];
    const params: SqlValue[] = [this.region];
    if (filter.project !== undefined) {
      conditions.push('project = ?');
      params.push(filter.project);
    }
    if (filter.resourceType !== undefined) {
      conditions.push('resource_type = ?');
      params.push(filter.resourceType);
    }
    return { where: conditions.join(' AND '), params };
  }

  private countOf(resourceType: string): CountFunction {
    checkName('resourceType', resourceType);
    const count = this.counts.get(resourceType);
    if (!count) {
      throw new LimitsUsageError(
        'invalid-request',
        `resource type "${resourceType}" has no count: register its table or a count function first`,
      );
    }
    return count;
  }

  /**
   * Sets one tracker's `used` to the host's count, under the tracker's lock: a host
   * transaction still in flight has not moved the tracker yet and its rows are not visible,
   * so it moves the recounted value when it commits. Returns the drift, if any.
   */
  private async recountOne(
    tx: Executor,
    project: string,
    resourceType: string,
    count: CountFunction,
    fresh: boolean,
  ): Promise<Drift | undefined> {
    const row = await this.lockTracker(tx, project, resourceType);
    if (!row) return undefined;
    const actual = await count(tx, project);
    const nowMs = this.clock.nowMs();
    await tx.run(
      `UPDATE allot_limit_trackers SET used = ?, recounted_at = ?, updated_at = ?
        WHERE region = ? AND project = ? AND resource_type = ?`,
      [actual, nowMs, nowMs, this.region, project, resourceType],
    );
    if (fresh || actual === row.used) return undefined;
    await this.journal(tx, project, resourceType, 'recount.drift', { stored: row.used, actual });
    return { region: this.region, project, resourceType, stored: row.used, actual };
  }

  private async journal(
    tx: Executor,
    project: string,
    resourceType: string,
    action: LimitsJournalEntry['action'],
    detail: Record<string, unknown>,
  ): Promise<void> {
    await tx.run(
      'INSERT INTO allot_limit_journal (at, region, project, resource_type, action, detail) VALUES (?, ?, ?, ?, ?, ?)',
      [this.clock.nowMs(), this.region, project, resourceType, action, JSON.stringify(detail)],
    );
  }
}
