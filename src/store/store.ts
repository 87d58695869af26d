/**
 * The one storage interface both engines implement. SQL is written once, with `?` placeholders,
 * in the portable subset both engines run (ON CONFLICT, RETURNING, partial indexes); where the
 * engines differ the difference is a capability on `Dialect`, never an `if (engine === …)` in
 * the ledger.
 */
export type Engine = 'sqlite' | 'postgres';

export type SqlValue = string | number | null;

/** Runs statements. Inside `Store.transaction` every call belongs to that transaction. */
export interface Executor {
  all<Row>(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  get<Row>(sql: string, params?: readonly SqlValue[]): Promise<Row | undefined>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Runs several INSERT, UPDATE or DELETE statements (none with RETURNING) and returns each
   * one's number of rows changed. PostgreSQL runs them as one statement (data-modifying CTEs:
   * one round trip, one snapshot, so no two may change the same row); SQLite one after another.
   */
  runMany(statements: readonly Statement[]): Promise<number[]>;
}

export interface Statement {
  sql: string;
  params: readonly SqlValue[];
}

/** A column of a table passed as JSON (see `Dialect.rowsFrom`). */
export interface JsonColumn {
  name: string;
  type: 'text' | 'bigint';
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
   * `WITH x AS (UPDATE … RETURNING …) INSERT …` runs as one statement (PostgreSQL). Saves a
   * round trip on the hot path; SQLite has no round trips to save and no such CTEs.
   */
  readonly supportsDataModifyingCte: boolean;
  /**
   * A table of rows given as one JSON parameter (an array of objects), for a FROM clause:
   * `FROM ${dialect.rowsFrom('v', columns)}` binds one `?` to `JSON.stringify(rows)`. A set of
   * rows of any size is one parameter and one statement text (one prepared statement).
   */
  rowsFrom(alias: string, columns: readonly JsonColumn[]): string;
  /** Share-locks the rows of one table of a join (PostgreSQL `FOR SHARE OF alias`; SQLite nothing). */
  shareRowsOf(alias: string): string;
}

export interface TransactionOptions {
  /** A read-only transaction takes no write lock (SQLite) and refuses writes (PostgreSQL). */
  readOnly?: boolean;
  /**
   * Every statement sees one snapshot (PostgreSQL REPEATABLE READ; SQLite's transactions
   * always do). For consistent multi-table reads such as a recount; implies nothing about locks.
   */
  snapshot?: boolean;
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
  close(): Promise<void>;
}
