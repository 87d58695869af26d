import type { Dialect, Executor } from '../store/store.js';
import type { JournalInput } from './journal/journal.js';

/** What every write inside one transaction needs: the transaction, the time, and who. */
export interface WriteContext {
  tx: Executor;
  dialect: Dialect;
  nowMs: number;
  /** Who asked for the change: recorded on the rows it writes and in its journal entry. */
  principal: string;
  /**
   * Journal entries of this transaction, written when its work is done: taking a revision
   * locks the organization's row, and doing that last keeps the order counters-then-
   * organization in every transaction.
   */
  journal: JournalInput[];
}
