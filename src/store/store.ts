/**
 * The one storage interface both engines implement. SQL is written once, with `?` placeholders,
 * in the portable subset both engines run (ON CONFLICT, RETURNING, partial indexes); where the
 * engines differ the difference is a capability on `Dialect`, never an `if (engine === …)` in
 * the ledger or the limits mixin. What only one engine can say (its catalogs, its trigger
 * language) lives in same-named files under sqlite/ and postgres/, reached through `Dialect`.
 */
import type { LimitTriggers } from './limit-triggers.js';

export type Engine = 'sqlite' | 'postgres';

/** A value bound to a `?`; a list only where `Dialect.list` made it. */
export type SqlValue = string | number | null | readonly (string | number)[];

/** Runs statements. Inside `Store.transaction` every call belongs to that transaction. */
export interface Executor {
  all<Row>(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  get<Row>(sql: string, params?: readonly SqlValue[]): Promise<Row | undefined>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Writes sets of rows, in order, and returns how many rows each changed. SQLite runs
   * prepared statements in-process (an update or delete per row, inserts up to 32 rows a
   * statement); PostgreSQL runs all of them as
   * one statement (each a data-modifying CTE over its rows as JSON: one round trip and one
   * snapshot, so no two writes of one call may touch the same row).
   */
  write(writes: readonly RowsWrite[]): Promise<number[]>;
  /**
   * Runs several SELECTs, in order, and returns each one's rows. PostgreSQL runs them as one
   * statement (each a subquery aggregated to JSON, evaluated left to right, so locks are taken
   * in the order given: one round trip); SQLite one after another. Columns must be text or
   * numbers.
   */
  selectMany(queries: readonly Statement[]): Promise<unknown[][]>;
}

export interface Statement {
  sql: string;
  params: readonly SqlValue[];
}

/** A column of a table of rows (see `RowsWrite`). */
export interface JsonColumn {
  name: string;
  type: 'text' | 'bigint';
}

/** One set of rows to insert, update or delete, by column name. */
export interface RowsWrite {
  op: 'insert' | 'update' | 'delete';
  table: string;
  /** update, delete: the (text) columns that pick the rows; the first one is indexed. */
  keys: readonly string[];
  /** insert: the columns written; update: the columns set; delete: none. */
  columns: readonly JsonColumn[];
  rows: readonly Readonly<Record<string, string | number | null>>[];
  /** insert: the ON CONFLICT clause, as written (excluded.* names the new row). */
  conflict?: string;
}

export interface Dialect {
  /**
   * Suffix that locks the selected rows until the transaction ends. PostgreSQL takes
   * `FOR NO KEY UPDATE` — the lock its own UPDATE of a non-key column takes: it serializes
   * writers but lets foreign-key checks (KEY SHARE) through, which `FOR UPDATE` would turn
   * into deadlocks. SQLite needs nothing: a write transaction (BEGIN IMMEDIATE) already holds
   * the database's single write lock.
   */
  readonly lockRowsSuffix: string;
  /** Suffix that share-locks the selected rows (PostgreSQL `FOR SHARE`; SQLite nothing). */
  readonly shareRowsSuffix: string;
  /**
   * The weakest share lock (PostgreSQL `FOR KEY SHARE`, what a foreign-key check takes): a
   * decision takes it on its project's row, so a project's deletion (`exclusiveRowsSuffix`)
   * waits for decisions in flight and the ones after it see the project gone.
   */
  readonly keyShareRowsSuffix: string;
  /** The lock that excludes even key-share lockers (PostgreSQL `FOR UPDATE`). */
  readonly exclusiveRowsSuffix: string;
  /**
   * Write transactions of one store run side by side (PostgreSQL: a pool of connections, and
   * row locks decide who waits). SQLite: false, one at a time, queued on its one connection, so
   * more than one writer in flight only waits.
   */
  readonly concurrentWrites: boolean;
  /**
   * `column` is one of a list of values, bound to one `?` given `list(values)`: any number of
   * values in one statement text (one prepared statement). PostgreSQL: `= ANY(?)`, an index
   * scan whatever the table's statistics say; SQLite: `IN (SELECT value FROM json_each(?))`.
   */
  inList(column: string): string;
  /** The parameter of `inList` and `listValues`. */
  list(values: readonly (string | number)[]): SqlValue;
  /** The list's values as a one-column subquery (binds one `?`). */
  listValues(): string;
  /** `column` is one of what `subquery` returns (PostgreSQL: `= ANY(ARRAY(subquery))`, by index). */
  inQuery(column: string, subquery: string): string;
  /**
   * `FROM … WHERE …` over the rows `t` of `table` whose text `columns` equal one of a list of
   * composite keys (bound to `keys(rows, columns.length)`) or of the keys the subquery `more`
   * selects, and pass `filter` (on the table's own columns). Each key is its own index probe,
   * never one per combination of each column's values (`inList` on each column), which grows
   * as the square of a group spread over organizations; and on PostgreSQL never a hash join
   * over the whole table, which a generic plan on stale statistics would choose for `IN`.
   * `lock` (a rows suffix of this dialect) locks `t`'s rows, key after key in sorted order.
   */
  keyed(table: string, columns: readonly string[], options?: { filter?: string; more?: string; lock?: string }): string;
  keys(rows: readonly (readonly string[])[], width: number): SqlValue[];
  /** The limits mixin's triggers on host tables (sqlite/ and postgres/limit-triggers.ts). */
  readonly limitTriggers: LimitTriggers;
}

export interface TransactionOptions {
  /** A read-only transaction takes no write lock (SQLite) and refuses writes (PostgreSQL). */
  readOnly?: boolean;
  /**
   * Every statement sees one snapshot (PostgreSQL REPEATABLE READ; SQLite's transactions
   * always do). For consistent multi-table reads such as a recount; implies nothing about locks.
   */
  snapshot?: boolean;
  /**
   * Every statement is planned as the index lookups it is written as (PostgreSQL: no
   * sequential or bitmap scans, hash or merge joins in this transaction): a generic plan made
   * while a table was small never turns into a scan of it once it is large, whatever its
   * statistics, and rows come (and are locked) in index order. For the group commit, whose
   * every statement names its rows by key.
   */
  byIndex?: boolean;
}

export interface Store {
  readonly engine: Engine;
  readonly dialect: Dialect;
  /** Statements run before the migrations (PostgreSQL: create the configured schema). */
  readonly setupStatements: readonly string[];
  /**
   * Runs `work` in one transaction and commits it, or rolls it back if `work` throws.
   * Serialization failures and deadlocks are retried with bounded, jittered backoff, so `work`
   * must be safe to run again (it is: all its effects are inside the transaction).
   */
  transaction<T>(work: (tx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** True if `error` is a unique-constraint violation raised by this engine. */
  isUniqueViolation(error: unknown): boolean;
  /** Its connections and retried transactions so far (for metrics; a store may have none). */
  stats?(): StoreStats;
  close(): Promise<void>;
}

export interface StoreStats {
  /**
   * Connections open, idle, transactions waiting for one, and the most there may be (SQLite:
   * its one connection, idle when no transaction runs, and the transactions queued behind it).
   */
  pool: { total: number; idle: number; waiting: number; max: number };
  /** Transactions run again, by reason (serialization-failure, deadlock, busy). */
  retries: Readonly<Record<string, number>>;
}
