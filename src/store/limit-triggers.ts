/**
 * The engine side of the limits mixin (src/limits/): enforcement that lives in the host's own
 * database, so a host's writes are counted and checked whatever client makes them — allot's
 * store, a `pg` Pool, better-sqlite3, Kysely, Drizzle — with no wrapper at all.
 *
 * Triggers on a registered host table note each inserted row as a delta of +1 for its project
 * (a deleted row -1, a row moved between projects both) in `allot_limit_deltas`, and a trigger
 * on that table applies the deltas to the trackers: one conditional UPDATE per tracker, which
 * raises `allot-limit-exceeded: {json}` if it would pass the limit (or there is no tracker), so
 * the host's whole transaction rolls back. On PostgreSQL the apply is a deferred constraint
 * trigger: the transaction's net deltas are applied at COMMIT, in one order (no deadlocks
 * between trackers). On SQLite (one writer) each delta is applied as it is written.
 *
 * Each engine implements it in a file of this name (sqlite/limit-triggers.ts,
 * postgres/limit-triggers.ts), reached through `Dialect.limitTriggers`: the mixin never asks
 * which engine it runs on.
 */
import type { Executor } from './store.js';

export interface RegisteredTable {
  /** The host's table. */
  table: string;
  /** The resource type its rows count as. */
  resourceType: string;
  /** The column that holds each row's project. */
  projectColumn: string;
}

/** What the error raised by the apply trigger carries, after its `allot-limit-exceeded: ` marker. */
export const limitExceededMarker = 'allot-limit-exceeded: ';

export interface LimitTriggers {
  /**
   * Installs (or brings up to date) the counting triggers of one registered table in
   * `region` (its names already checked: they are written into the SQL), and the apply
   * trigger. Trigger names all start with `allot_limit_`.
   */
  install(tx: Executor, registered: RegisteredTable, region: string): Promise<void>;
  /** Errors of two processes installing the same triggers at once: worth a retry. */
  isInstallRace(error: unknown): boolean;
  /** The SQL expression a delta's `tx` column holds: the writing transaction's id. */
  txIdSql: string;
  /** Applies the deltas noted so far in `tx` now rather than at commit (raising as at commit). */
  applyNow(tx: Executor): Promise<void>;
  /**
   * A condition on `allot_limit_deltas` rows that holds for leftovers: rows of a transaction
   * that is over and never applied them (triggers disabled by hand, or an older allot).
   */
  leftoverCondition: string;
}
