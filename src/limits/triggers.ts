/**
 * Registered tables: host tables whose inserts and deletes the limits mixin counts, by
 * triggers. The triggers themselves are the engine's (src/store/limit-triggers.ts, one file of
 * that name per engine, reached through `store.dialect.limitTriggers`); here is only the check
 * that a registration's names are plain identifiers, since they are written into the triggers'
 * SQL.
 */
import type { RegisteredTable } from '../store/limit-triggers.js';
import { LimitsUsageError } from './errors.js';

export type { RegisteredTable };

const identifier = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkRegisteredTable(registered: RegisteredTable): RegisteredTable {
  for (const [field, value] of Object.entries(registered)) {
    if (!identifier.test(value)) {
      throw new LimitsUsageError('invalid-request', `${field} must match ${identifier.source}, got "${value}"`);
    }
  }
  return registered;
}
