import type { LimitTriggers } from '../limit-triggers.js';

/**
 * PostgreSQL: a limits transaction sets `allot_limits.tx` for itself (set_config local to the
 * transaction, so it ends with it) and the triggers' function reads it. Installing creates only
 * what is missing, so host processes starting together do not replace each other's functions
 * and triggers mid-flight (a race the caller retries: `isInstallRace`); a table registered again
 * under another resource type keeps its first triggers until they are dropped by hand.
 */
export const limitTriggers: LimitTriggers = {
  async install(tx, { table, resourceType, projectColumn }) {
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
  },
  // A unique violation in the catalogs, a duplicate object or function, "tuple concurrently
  // updated" (XX000), or a deadlock between the two creators.
  isInstallRace(error) {
    const code = (error as { code?: unknown } | null)?.code;
    return code === '23505' || code === '42710' || code === '42723' || code === 'XX000' || code === '40P01';
  },
  async begin(tx, token) {
    await tx.get("SELECT set_config('allot_limits.tx', ?, true) AS token", [token]);
  },
  // The setting is local to the transaction: nothing to undo.
  async end() {},
};

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
