/**
 * The engine side of the limits mixin (src/limits/): triggers that count creates and deletes on
 * a registered host table, so the host never has to remember to declare them. During a limits
 * transaction each inserted row adds a delta of +1 for its project (a deleted row -1, a row
 * moved between projects both) to `allot_limit_deltas`; the mixin folds them into the trackers
 * when the transaction ends. Outside a limits transaction the triggers refuse the write, so a
 * registered table can never change without its tracker.
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

export interface LimitTriggers {
  /**
   * Installs the triggers of one registered table (its names already checked as identifiers:
   * they are written into the SQL). Trigger names all start with `allot_limit_<table>`.
   */
  install(tx: Executor, registered: RegisteredTable): Promise<void>;
  /** Errors of two processes installing the same triggers at once: worth a retry. */
  isInstallRace(error: unknown): boolean;
  /** Tells the triggers that the limits transaction `token` runs in `tx` (first thing in it). */
  begin(tx: Executor, token: string): Promise<void>;
  /** The limits transaction's own writes are done: the triggers refuse writes again. */
  end(tx: Executor): Promise<void>;
}
