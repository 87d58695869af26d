import { limitExceededMarker, type LimitTriggers, type RegisteredTable } from '../limit-triggers.js';

/**
 * SQLite: one writer, so each delta is applied as it is written — the registered table's
 * triggers insert it into `allot_limit_deltas`, whose trigger checks and moves the tracker and
 * removes the row. A transaction that deletes and then creates passes at a full limit; one that
 * creates first does not. Installing replaces the triggers (the write transaction excludes
 * every other process, so there is no race to retry).
 */
export const limitTriggers: LimitTriggers = {
  async install(tx, registered, region) {
    for (const statement of [...applyStatements, ...statementsOf(registered, region)]) await tx.run(statement);
  },
  isInstallRace: () => false,
  txIdSql: "''",
  async applyNow() {},
  // Every delta is applied and removed in the statement that wrote it: any row still there
  // (while the caller holds the one write lock) was left by triggers that did not apply it.
  leftoverCondition: '1 = 1',
};

const tracker = `FROM allot_limit_trackers
  WHERE region = NEW.region AND project = NEW.project AND resource_type = NEW.resource_type`;

const applyStatements = [
  'DROP TRIGGER IF EXISTS allot_limit_apply',
  `CREATE TRIGGER allot_limit_apply AFTER INSERT ON allot_limit_deltas
  BEGIN
    SELECT RAISE(ABORT, '${limitExceededMarker}' || json_object(
        'resourceType', NEW.resource_type, 'project', NEW.project, 'region', NEW.region,
        'limit', COALESCE((SELECT limit_value ${tracker}), 0), 'used', COALESCE((SELECT used ${tracker}), 0),
        'requested', NEW.delta, 'tracked', json(CASE WHEN EXISTS (SELECT 1 ${tracker}) THEN 'true' ELSE 'false' END)))
      WHERE NEW.delta > 0 AND NOT EXISTS (SELECT 1 ${tracker} AND used + NEW.delta <= limit_value);
    UPDATE allot_limit_trackers SET used = MAX(used + NEW.delta, 0), updated_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
      WHERE region = NEW.region AND project = NEW.project AND resource_type = NEW.resource_type;
    DELETE FROM allot_limit_deltas WHERE rowid = NEW.rowid;
  END`,
];

function statementsOf({ table, resourceType, projectColumn }: RegisteredTable, region: string): string[] {
  const name = `allot_limit_${table}`;
  const count = (event: 'INSERT' | 'DELETE' | 'UPDATE', row: 'NEW' | 'OLD', delta: number, when: string) => `
    CREATE TRIGGER ${name}_${event.toLowerCase()}_${row.toLowerCase()}
      AFTER ${event} ON ${table} FOR EACH ROW WHEN ${when}
    BEGIN
      ${row === 'NEW' ? refuseNull : ''}
      INSERT INTO allot_limit_deltas (tx, region, resource_type, project, delta)
        VALUES ('', '${region}', '${resourceType}', ${row}.${projectColumn}, ${delta});
    END`;
  // A row with no project cannot be created (or moved there); its delete or move takes nothing
  // from any tracker: it was never counted.
  const refuseNull = `SELECT RAISE(ABORT, 'allot-limits: a row of ${table} with a NULL ${projectColumn} cannot be counted: a counted row needs its project')
        WHERE NEW.${projectColumn} IS NULL;`;
  // Any UPDATE, not only one naming the column (UPDATE OF): a generated project column changes
  // with the columns it is computed from.
  const moved = `NEW.${projectColumn} IS NOT OLD.${projectColumn}`;
  return [
    ...['insert_new', 'delete_old', 'update_new', 'update_old'].map((t) => `DROP TRIGGER IF EXISTS ${name}_${t}`),
    count('DELETE', 'OLD', -1, `OLD.${projectColumn} IS NOT NULL`),
    count('INSERT', 'NEW', 1, 'true'),
    count('UPDATE', 'OLD', -1, `${moved} AND OLD.${projectColumn} IS NOT NULL`),
    count('UPDATE', 'NEW', 1, moved),
  ];
}
