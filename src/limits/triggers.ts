/**
 * Triggers that count creates and deletes on a registered host table, so the host never has to
 * remember to declare them. During a limits transaction each inserted row adds a delta of +1
 * for its project (a deleted row -1, a row moved between projects both) to
 * `allot_limit_deltas`; the mixin folds them into the trackers when the transaction ends. Outside
 * a limits transaction the triggers refuse the write, so a registered table can never change
 * without its tracker.
 */
import type { Engine, Executor } from '../store/store.js';
import { LimitsUsageError } from './errors.js';

export interface RegisteredTable {
  /** The host's table. */
  table: string;
  /** The resource type its rows count as. */
  resourceType: string;
  /** The column that holds each row's project. */
  projectColumn: string;
}

const identifier = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkRegisteredTable(registered: RegisteredTable): RegisteredTable {
  for (const [field, value] of Object.entries(registered)) {
    if (!identifier.test(value)) {
      throw new LimitsUsageError('invalid-request', `${field} must match ${identifier.source}, got "${value}"`);
    }
  }
  return registered;
}

/**
 * Installs the triggers of one registered table. SQLite (one writer) replaces them. PostgreSQL
 * creates only what is missing, so host processes starting together do not replace each
 * other's functions and triggers mid-flight (a race the caller retries: see registerTable); a
 * table registered again under another resource type keeps its first triggers until they are
 * dropped by hand.
 */
export async function installTriggers(tx: Executor, engine: Engine, registered: RegisteredTable): Promise<void> {
  if (engine === 'sqlite') {
    for (const statement of sqliteStatements(registered)) await tx.run(statement);
    return;
  }
  const { table, resourceType, projectColumn } = registered;
  const name = `allot_limit_${table}`;
  const functions = await tx.all<{ proname: string }>(
    `SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace
      AND proname IN ('allot_limit_count', 'allot_limit_refuse_truncate')`,
  );
  const hasFunction = (fn: string) => functions.some((row) => row.proname === fn);
  if (!hasFunction('allot_limit_count')) await tx.run(countFunction);
  if (!hasFunction('allot_limit_refuse_truncate')) await tx.run(refuseTruncateFunction);
  const triggers = await tx.all<{ tgname: string }>(
    `SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(? AS regclass) AND tgname LIKE 'allot_limit_%'`,
    [table],
  );
  const has = (trigger: string) => triggers.some((row) => row.tgname === trigger);
  if (!has(name)) {
    await tx.run(`CREATE TRIGGER ${name} AFTER INSERT OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION allot_limit_count('${resourceType}', '${projectColumn}')`);
  }
  if (!has(`${name}_moved`)) {
    await tx.run(`CREATE TRIGGER ${name}_moved AFTER UPDATE OF ${projectColumn} ON ${table}
      FOR EACH ROW WHEN (OLD.${projectColumn} IS DISTINCT FROM NEW.${projectColumn})
      EXECUTE FUNCTION allot_limit_count('${resourceType}', '${projectColumn}')`);
  }
  // TRUNCATE fires no row triggers: it would empty the table behind the trackers' backs.
  if (!has(`${name}_truncate`)) {
    await tx.run(`CREATE TRIGGER ${name}_truncate BEFORE TRUNCATE ON ${table}
      FOR EACH STATEMENT EXECUTE FUNCTION allot_limit_refuse_truncate()`);
  }
}

/** Errors of two processes creating the same function or trigger at once: worth a retry. */
export function isCatalogRace(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === '42710' || code === '42723' || code === 'XX000' || code === '40P01';
}

const countFunction = `CREATE FUNCTION allot_limit_count() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    token text := current_setting('allot_limits.tx', true);
  BEGIN
    IF token IS NULL OR token = '' THEN
      RAISE EXCEPTION 'allot-limits: % changed outside a limits transaction', TG_TABLE_NAME;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
      INSERT INTO allot_limit_deltas (tx, resource_type, project, delta)
        VALUES (token, TG_ARGV[0], to_jsonb(NEW) ->> TG_ARGV[1], 1);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
      INSERT INTO allot_limit_deltas (tx, resource_type, project, delta)
        VALUES (token, TG_ARGV[0], to_jsonb(OLD) ->> TG_ARGV[1], -1);
    END IF;
    RETURN NULL;
  END $$`;

const refuseTruncateFunction = `CREATE FUNCTION allot_limit_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'allot-limits: % cannot be truncated: delete its rows in a limits transaction', TG_TABLE_NAME;
  END $$`;

function sqliteStatements({ table, resourceType, projectColumn }: RegisteredTable): string[] {
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
