/**
 * A store whose transactions are traced (see telemetry/database.ts): each one, its retries
 * included, is a `db.transaction` span under the span that asked for it. `openStore` returns
 * its stores this way; a store opened otherwise (a library user's own) runs untraced.
 */
import { traceTransaction } from '../telemetry/database.js';
import type { Store } from './store.js';

export function tracedStore(store: Store): Store {
  const system = store.engine === 'postgres' ? 'postgresql' : 'sqlite';
  return {
    ...store,
    transaction: (work, options = {}) => traceTransaction(system, options, () => store.transaction(work, options)),
  };
}
