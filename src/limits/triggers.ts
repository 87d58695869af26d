/**
 * Registered tables: host tables whose inserts and deletes the limits mixin counts, by
 * triggers. The triggers themselves are the engine's (src/store/limit-triggers.ts, one file of
 * that name per engine, reached through `store.dialect.limitTriggers`); here are only the check
 * of a registration (its names are plain identifiers, since they are written into the triggers'
 * SQL, and a table is registered once) and the true count of a type's tables.
 */
import type { RegisteredTable } from '../store/limit-triggers.js';
import { LimitsUsageError } from './errors.js';
import type { CountFunction } from './types.js';

export type { RegisteredTable };

const identifier = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a registration's names, and that its table was not registered (`earlier`) under other
 * names: a table has one set of triggers, which would be replaced, so the first resource type
 * would silently no longer be counted.
 */
export function checkRegisteredTable(registered: RegisteredTable, earlier?: RegisteredTable): RegisteredTable {
  for (const [field, value] of Object.entries(registered)) {
    if (!identifier.test(value)) {
      throw new LimitsUsageError('invalid-request', `${field} must match ${identifier.source}, got "${value}"`);
    }
  }
  if (earlier && (earlier.resourceType !== registered.resourceType || earlier.projectColumn !== registered.projectColumn)) {
    throw new LimitsUsageError(
      'invalid-request',
      `table "${registered.table}" is already registered as ${earlier.resourceType} by ${earlier.projectColumn}: ` +
        'a table counts as one resource type, by one project column',
    );
  }
  return registered;
}

/** The true count of a resource type counted on `tables`: their rows in the project, together. */
export function countOfTables(tables: readonly RegisteredTable[]): CountFunction {
  return async (tx, project) => {
    let count = 0;
    for (const { table, projectColumn } of tables) {
      const row = await tx.get<{ n: number }>(`SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ${table} WHERE ${projectColumn} = ?`, [
        project,
      ]);
      count += Number(row?.n ?? 0);
    }
    return count;
  };
}
