import type { LimitTriggers, RegisteredTable } from '../limit-triggers.js';

/**
 * SQLite: a limits transaction writes its token to `allot_limit_tx` (one writer, so at most one
 * row) and the triggers copy it into each delta; with no row there they abort the write.
 * Installing replaces a table's triggers (the write transaction excludes every other process,
 * so there is no race to retry).
 */
export const limitTriggers: LimitTriggers = {
  async install(tx, registered) {
    for (const statement of statementsOf(registered)) await tx.run(statement);
  },
  isInstallRace: () => false,
  async begin(tx, token) {
    await tx.run('INSERT INTO allot_limit_tx (tx) VALUES (?)', [token]);
  },
  async end(tx) {
    await tx.run('DELETE FROM allot_limit_tx');
  },
};

function statementsOf({ table, resourceType, projectColumn }: RegisteredTable): string[] {
  const name = `allot_limit_${table}`;
  const outside = `allot-limits: ${table} changed outside a limits transaction`;
  const count = (event: string, row: 'NEW' | 'OLD', delta: number, when = '') => `
    CREATE TRIGGER ${name}_${event.toLowerCase().replace(/ .*/, '')}_${row.toLowerCase()}
      AFTER ${event} ON ${table} ${when}
    BEGIN
      SELECT RAISE(ABORT, '${outside}') WHERE NOT EXISTS (SELECT 1 FROM allot_limit_tx);
      INSERT INTO allot_limit_deltas (tx, resource_type, project, delta)
        SELECT tx, '${resourceType}', ${row}.${projectColumn}, ${delta} FROM allot_limit_tx;
    END`;
  const moved = `FOR EACH ROW WHEN NEW.${projectColumn} IS NOT OLD.${projectColumn}`;
  return [
    ...['insert_new', 'delete_old', 'update_new', 'update_old'].map((t) => `DROP TRIGGER IF EXISTS ${name}_${t}`),
    count('INSERT', 'NEW', 1),
    count('DELETE', 'OLD', -1),
    count(`UPDATE OF ${projectColumn}`, 'NEW', 1, moved),
    count(`UPDATE OF ${projectColumn}`, 'OLD', -1, moved),
  ];
}
