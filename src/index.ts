/** allot as a library: open a ledger on SQLite or PostgreSQL and call it in-process. */
export { openLedger, Ledger, type LedgerOptions } from './ledger/ledger.js';
export type * from './ledger/types.js';
export { AllotError, errorCodes, type ErrorCode, type Violation } from './domain/errors.js';
export { parseQuantity } from './domain/quantity.js';
export type { Clock } from './domain/clock.js';
export { openStore } from './store/open.js';
export type { Store, Executor, Engine } from './store/store.js';
