import { limitExceededMarker, type LimitTriggers } from '../limit-triggers.js';

/**
 * PostgreSQL: the registered table's row triggers note deltas under the transaction's id, and a
 * deferred constraint trigger on `allot_limit_deltas` applies the transaction's net deltas at
 * COMMIT, one tracker at a time in one order. Every trigger is ENABLE ALWAYS, so
 * `session_replication_role` does not turn it off; TRUNCATE of a registered table is refused.
 * The functions name the mixin's tables by their schema (the one it was adopted in), so a host
 * session's search_path — another schema, a temporary table of the same name — changes nothing.
 *
 * Installing creates only what is missing or out of date, so host processes starting together
 * do not replace each other's functions and triggers mid-flight (a race the caller retries:
 * `isInstallRace`). A table registered again with other names gets its triggers replaced, and a
 * function an older allot created gets the current body.
 */
export const limitTriggers: LimitTriggers = {
  async install(tx, { table, resourceType, projectColumn }, region) {
    // PostgreSQL cuts names at 63 bytes: past 49 characters of table name, two of its
    // triggers' names would be cut to the same one.
    if (table.length > maxTableName) {
      throw new Error(
        `allot-limits: table name "${table}" is too long for its limit triggers on PostgreSQL ` +
          `(at most ${maxTableName} characters)`,
      );
    }
    const { schema } = (await tx.get<{ schema: string }>('SELECT current_schema() AS schema'))!;
    const functions = await tx.all<{ proname: string; prosrc: string }>(
      `SELECT proname, prosrc FROM pg_proc WHERE pronamespace = current_schema()::regnamespace
      AND proname IN ('allot_limit_note', 'allot_limit_apply', 'allot_limit_refuse_truncate')`,
    );
    for (const [fn, template] of Object.entries(functionBodies)) {
      const body = template.replaceAll(inSchema, () => `${quoteIdentifier(schema)}.`);
      const found = functions.find((row) => row.proname === fn);
      if (found?.prosrc === body) continue;
      await tx.run(`CREATE ${found ? 'OR REPLACE ' : ''}FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $allot$${body}$allot$`);
    }
    const args = `'${resourceType}', '${projectColumn}', '${region}'`;
    const name = fitName(`allot_limit_${table}`);
    const moved = fitName(`${name}_moved`);
    const truncate = fitName(`${name}_truncate`);
    const wanted: Record<string, string> = {
      [name]: `CREATE TRIGGER ${name} AFTER INSERT OR DELETE ON ${table}
        FOR EACH ROW EXECUTE FUNCTION allot_limit_note(${args})`,
      // Any UPDATE, not only one naming the column (UPDATE OF): a host's BEFORE trigger may
      // change the project of a row an UPDATE of other columns touched.
      [moved]: `CREATE TRIGGER ${moved} AFTER UPDATE ON ${table}
        FOR EACH ROW WHEN (OLD.${projectColumn} IS DISTINCT FROM NEW.${projectColumn})
        EXECUTE FUNCTION allot_limit_note(${args})`,
      // TRUNCATE fires no row triggers: it would empty the table behind the trackers' backs.
      [truncate]: `CREATE TRIGGER ${truncate} BEFORE TRUNCATE ON ${table}
        FOR EACH STATEMENT EXECUTE FUNCTION allot_limit_refuse_truncate()`,
    };
    await ensureTriggers(tx, table, wanted, (trigger, definition) =>
      trigger === truncate
        ? true
        : definition.includes(`allot_limit_note(${args})`) && (trigger !== moved || definition.includes(' AFTER UPDATE ON ')),
    );
    await ensureTriggers(
      tx,
      'allot_limit_deltas',
      {
        allot_limit_apply: `CREATE CONSTRAINT TRIGGER allot_limit_apply AFTER INSERT ON allot_limit_deltas
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION allot_limit_apply()`,
      },
      () => true,
    );
  },
  // A unique violation in the catalogs, a duplicate object or function, "tuple concurrently
  // updated" (XX000), or a deadlock between the two creators.
  isInstallRace(error) {
    const code = (error as { code?: unknown } | null)?.code;
    return code === '23505' || code === '42710' || code === '42723' || code === 'XX000' || code === '40P01';
  },
  txIdSql: 'CAST(pg_current_xact_id() AS text)',
  async applyNow(tx) {
    await tx.run('SET CONSTRAINTS allot_limit_apply IMMEDIATE');
  },
  // Noted by a transaction that is over (committed or not) and never applied; an older allot
  // noted under a token that is not a transaction id.
  leftoverCondition: `CASE WHEN tx ~ '^[0-9]+$' THEN pg_xact_status(CAST(tx AS xid8)) IS DISTINCT FROM 'in progress'
    ELSE true END`,
};

/**
 * Creates the triggers of `wanted` on `table` that are missing, and replaces those whose
 * definition `current` rejects (an older allot's, or other names); each one ENABLE ALWAYS.
 */
async function ensureTriggers(
  tx: Parameters<LimitTriggers['install']>[0],
  table: string,
  wanted: Record<string, string>,
  current: (trigger: string, definition: string) => boolean,
): Promise<void> {
  const existing = await tx.all<{ tgname: string; definition: string; tgenabled: string }>(
    `SELECT tgname, pg_get_triggerdef(oid) AS definition, tgenabled FROM pg_trigger
      WHERE tgrelid = CAST(? AS regclass) AND tgname LIKE 'allot_limit_%'`,
    [table],
  );
  for (const [trigger, sql] of Object.entries(wanted)) {
    const found = existing.find((row) => row.tgname === trigger);
    if (found && current(trigger, found.definition) && found.tgenabled === 'A') continue;
    if (found && !current(trigger, found.definition)) await tx.run(`DROP TRIGGER ${trigger} ON ${table}`);
    if (!found || !current(trigger, found.definition)) await tx.run(sql);
    await tx.run(`ALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${trigger}`);
  }
}

/** The longest table name whose trigger names PostgreSQL keeps apart (it cuts names at 63). */
const maxTableName = 49;

/** A name as PostgreSQL keeps it: cut at 63 bytes (the names here are ASCII). */
function fitName(name: string): string {
  return name.slice(0, 63);
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Stands for the mixin's schema (quoted, with its dot) in the functions' bodies. */
const inSchema = '@schema.';
const deltas = `${inSchema}allot_limit_deltas`;
const trackers = `${inSchema}allot_limit_trackers`;

/**
 * The functions' bodies. They name the mixin's tables in its schema (`inSchema`, replaced at
 * install): they run in the host's sessions, whatever their search_path. `pg_catalog` comes
 * first in every search_path, so the built-in functions they call cannot be shadowed.
 */
const functionBodies: Record<string, string> = {
  // A row's project as text; a row with none (NULL) cannot be created, and its delete or move
  // takes nothing from any tracker: it was never counted.
  allot_limit_note: `
DECLARE
  this_tx text := CAST(pg_current_xact_id() AS text);
  project jsonb;
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    project := to_jsonb(NEW) -> TG_ARGV[1];
    IF project IS NULL THEN
      RAISE EXCEPTION 'allot-limits: % has no column %: register the table again', TG_TABLE_NAME, TG_ARGV[1];
    END IF;
    IF jsonb_typeof(project) = 'null' THEN
      RAISE EXCEPTION USING ERRCODE = '23502', MESSAGE = format(
        'allot-limits: a row of %s with a NULL %s cannot be counted: a counted row needs its project', TG_TABLE_NAME, TG_ARGV[1]);
    END IF;
    INSERT INTO ${deltas} (tx, region, resource_type, project, delta)
      VALUES (this_tx, TG_ARGV[2], TG_ARGV[0], project #>> '{}', 1);
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    project := to_jsonb(OLD) -> TG_ARGV[1];
    IF project IS NULL THEN
      RAISE EXCEPTION 'allot-limits: % has no column %: register the table again', TG_TABLE_NAME, TG_ARGV[1];
    END IF;
    IF jsonb_typeof(project) <> 'null' THEN
      INSERT INTO ${deltas} (tx, region, resource_type, project, delta)
        VALUES (this_tx, TG_ARGV[2], TG_ARGV[0], project #>> '{}', -1);
    END IF;
  END IF;
  RETURN NULL;
END `,

  // Fired once per noted row at COMMIT: the first firing takes all of the transaction's
  // deltas; each other one finds its own row gone (one lookup by id) and returns — rather than
  // searching again the rows the first one took, which made a statement of n rows cost n² at
  // COMMIT. Nothing a session can set skips it. A delete with no tracker counts for nothing —
  // unless a tracker is being created right now (its recount may have counted the row):
  // inserting one waits for it.
  allot_limit_apply: `
DECLARE
  this_tx text := CAST(pg_current_xact_id() AS text);
  now_ms bigint := CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint);
  d record;
  t record;
BEGIN
  PERFORM 1 FROM ${deltas} WHERE id = NEW.id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  FOR d IN
    WITH taken AS (DELETE FROM ${deltas} WHERE tx = this_tx RETURNING region, resource_type, project, delta)
    SELECT region, resource_type, project, CAST(SUM(delta) AS bigint) AS delta FROM taken
      GROUP BY region, resource_type, project
      ORDER BY region COLLATE "C", resource_type COLLATE "C", project COLLATE "C"
  LOOP
    CONTINUE WHEN d.delta = 0;
    UPDATE ${trackers} SET used = GREATEST(used + d.delta, 0), updated_at = now_ms
      WHERE region = d.region AND project = d.project AND resource_type = d.resource_type
        AND (d.delta < 0 OR used + d.delta <= limit_value);
    CONTINUE WHEN FOUND;
    SELECT * INTO t FROM ${trackers}
      WHERE region = d.region AND project = d.project AND resource_type = d.resource_type FOR UPDATE;
    -- Judged again under the lock: a limit raised in between lets it through.
    IF FOUND AND t.used + d.delta <= t.limit_value THEN
      UPDATE ${trackers} SET used = GREATEST(used + d.delta, 0), updated_at = now_ms
        WHERE region = d.region AND project = d.project AND resource_type = d.resource_type;
      CONTINUE;
    END IF;
    IF FOUND OR d.delta > 0 THEN
      RAISE EXCEPTION USING ERRCODE = 'AL409', MESSAGE = '${limitExceededMarker}' || json_build_object(
        'resourceType', d.resource_type, 'project', d.project, 'region', d.region,
        'limit', COALESCE(t.limit_value, 0), 'used', COALESCE(t.used, 0), 'requested', d.delta, 'tracked', FOUND);
    END IF;
    INSERT INTO ${trackers} (region, project, resource_type, limit_value, used, created_at, updated_at)
      VALUES (d.region, d.project, d.resource_type, 0, 0, now_ms, now_ms) ON CONFLICT DO NOTHING;
    IF FOUND THEN
      DELETE FROM ${trackers} WHERE region = d.region AND project = d.project AND resource_type = d.resource_type;
    ELSE
      UPDATE ${trackers} SET used = GREATEST(used + d.delta, 0), updated_at = now_ms
        WHERE region = d.region AND project = d.project AND resource_type = d.resource_type;
    END IF;
  END LOOP;
  RETURN NULL;
END `,

  allot_limit_refuse_truncate: `
BEGIN
  RAISE EXCEPTION 'allot-limits: % cannot be truncated: delete its rows instead', TG_TABLE_NAME;
END `,
};
