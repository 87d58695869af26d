/**
 * The limits mixin: a library a host service embeds to keep, in its *own* database, one hidden
 * tracker per (region, project, resource type) — a limit and a count of the host's resources —
 * updated in the same transaction as the resources, so the count can never drift.
 *
 * The enforcement lives in the database (src/store/limit-triggers.ts): once `openLimits` has
 * run the migration and registered the host's tables, every insert, delete and move on them is
 * counted and checked in the writing transaction, whatever client made it, and a write that
 * would pass a limit fails that transaction (`isLimitExceeded(error)` recognizes the error).
 * `mixin.transaction(work)` is sugar on top: it also takes declared counts (`tx.created()`)
 * and throws LimitExceededError. Each tracker's row lock serializes creates in one project and
 * type; other projects never wait (on PostgreSQL; SQLite has one writer).
 */
import { systemClock, type Clock } from '../domain/clock.js';
import { quantityMax } from '../domain/constants.js';
import { migrate } from '../store/migrations.js';
import { openStore } from '../store/open.js';
import type { Executor, SqlValue, Store } from '../store/store.js';
import { isLimitExceeded, LimitsUsageError } from './errors.js';
import { limitsMigrations, limitsMigrationsTable } from './migrations.js';
import { checkRegisteredTable, countOfTables, type RegisteredTable } from './triggers.js';
import { checkName, trackerOf, type CountFunction, type Drift, type Leftover, type LimitsJournalEntry, type Tracker, type TrackerRow } from './types.js';
export type { CountFunction, Drift, Leftover, LimitsJournalEntry, Tracker } from './types.js';

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

/**
 * Adopts limits in a host's database: runs the mixin's migration and installs the triggers of
 * the host's tables. From then on the host's writes to them are counted and checked in its own
 * transactions, whatever client makes them; no mixin needs to stay open.
 */
export async function adoptLimits(options: LimitsOptions): Promise<void> {
  await (await openLimits(options)).close();
}

export class LimitsMixin {
  private readonly counts = new Map<string, CountFunction>();
  private readonly tables = new Map<string, RegisteredTable>();

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
    const { table, resourceType } = checkRegisteredTable(registered, this.tables.get(registered.table));
    const triggers = this.store.dialect.limitTriggers;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.store.transaction((tx) => triggers.install(tx, registered, this.region));
        break;
      } catch (error) {
        // Another host process created them at the same moment: look again.
        if (attempt >= 5 || !triggers.isInstallRace(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.floor(Math.random() * 20)));
      }
    }
    this.tables.set(table, registered);
    // Every table of the type moves the same trackers: the recount counts them all.
    this.registerResourceType(resourceType, countOfTables([...this.tables.values()].filter((t) => t.resourceType === resourceType)));
  }

  /** How the true recount counts a resource type the host declares itself. */
  registerResourceType(resourceType: string, count: CountFunction): void {
    this.counts.set(checkName('resourceType', resourceType), count);
  }

  /**
   * Sugar over the database's own enforcement: runs `work` in one transaction of the host's
   * database, notes its declared creates and deletes beside the ones the triggers noted, and
   * applies them all before committing. Throws LimitExceededError (after rolling everything
   * back) if a tracker would pass its limit. Like every allot transaction, `work` may run again
   * after a serialization failure or deadlock, so it must do nothing outside the transaction.
   */
  async transaction<T>(work: (tx: LimitsTransaction) => Promise<T>): Promise<T> {
    const triggers = this.store.dialect.limitTriggers;
    try {
      return await this.store.transaction(async (tx) => {
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
        for (const [key, delta] of declared) {
          if (delta === 0) continue;
          const [resourceType, project] = key.split('\u0000') as [string, string];
          await tx.run(
            `INSERT INTO allot_limit_deltas (tx, region, resource_type, project, delta) VALUES (${triggers.txIdSql}, ?, ?, ?, ?)`,
            [this.region, resourceType, project, delta],
          );
        }
        await triggers.applyNow(tx);
        return result;
      });
    } catch (error) {
      throw isLimitExceeded(error) ?? error;
    }
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

  /** The true recount (recountWithLeftovers): the drifts it found. */
  async recount(filter: { project?: string; resourceType?: string } = {}): Promise<Drift[]> {
    return (await this.recountWithLeftovers(filter)).drifts;
  }

  /**
   * The true recount: cleans up leftover deltas, then for each tracker (of one project or type,
   * or all) locks it, counts the host's resources and sets `used` to the count, in one
   * transaction per tracker. Returns the drifts it found (each one journaled) and the leftovers.
   */
  async recountWithLeftovers(filter: { project?: string; resourceType?: string } = {}): Promise<{ drifts: Drift[]; leftovers: Leftover[] }> {
    const leftovers = await this.cleanLeftovers();
    const drifts: Drift[] = [];
    for (const tracker of await this.listTrackers(filter)) {
      const count = this.counts.get(tracker.resourceType);
      if (!count) continue;
      const drift = await this.store.transaction(async (tx) =>
        this.recountOne(tx, tracker.project, tracker.resourceType, count, false),
      );
      if (drift) drifts.push(drift);
    }
    return { drifts, leftovers };
  }

  /**
   * Removes deltas that a finished transaction noted and never applied (the apply trigger
   * disabled by hand, or an older allot), journaling each tracker's as `deltas.leftover` — a
   * drift: the recount that follows sets the trackers to the true count. Returns them.
   */
  async cleanLeftovers(): Promise<Leftover[]> {
    const condition = `region IN (?, '') AND (${this.store.dialect.limitTriggers.leftoverCondition})`;
    return this.store.transaction(async (tx) => {
      const rows = await tx.all<{ resource_type: string; project: string; delta: number; n: number }>(
        `SELECT resource_type, project, CAST(SUM(delta) AS BIGINT) AS delta, CAST(COUNT(*) AS BIGINT) AS n
          FROM allot_limit_deltas WHERE ${condition} GROUP BY resource_type, project ORDER BY resource_type, project`,
        [this.region],
      );
      if (rows.length === 0) return [];
      await tx.run(`DELETE FROM allot_limit_deltas WHERE ${condition}`, [this.region]);
      const leftovers = rows.map((row) => ({
        project: row.project,
        resourceType: row.resource_type,
        rows: Number(row.n),
        delta: Number(row.delta),
      }));
      for (const { project, resourceType, ...detail } of leftovers) {
        await this.journal(tx, project, resourceType, 'deltas.leftover', detail);
      }
      return leftovers;
    });
  }

  /**
   * How many drifts this region's journal holds, of every cause (recounts on demand, by the
   * controller or by a limit change, and leftover deltas): only grows, so a controller can
   * count the new ones into its metrics.
   */
  async driftCount(): Promise<number> {
    const sql = `SELECT CAST(COUNT(*) AS BIGINT) AS n FROM allot_limit_journal
      WHERE region = ? AND action IN ('recount.drift', 'deltas.leftover')`;
    const row = await this.store.transaction((tx) => tx.get<{ n: number }>(sql, [this.region]), { readOnly: true });
    return Number(row?.n ?? 0);
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
