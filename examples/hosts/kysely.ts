/**
 * A host written with Kysely, on either engine: `db.transaction().execute(…)`. On PostgreSQL
 * the refusal fails the COMMIT that Kysely runs; on SQLite, the INSERT.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { adopt, hostTables, pgConfig, sqlitePath, type Host } from './host.js';

interface Tables {
  instances: { id: string; project_id: string; name: string };
  events: { instance_id: string; kind: string };
}

export async function openKyselyHost(url: string): Promise<Host> {
  const dialect = url.startsWith('sqlite:')
    ? new SqliteDialect({ database: new Database(sqlitePath(url), { timeout: 30_000 }) })
    : new PostgresDialect({ pool: new pg.Pool({ ...pgConfig(url), max: 8 }) });
  const db = new Kysely<Tables>({ dialect });
  for (const statement of hostTables) await sql.raw(statement).execute(db);
  await adopt(url);

  return {
    create: (project, name, beforeCommit) =>
      db.transaction().execute(async (tx) => {
        const id = randomUUID();
        await tx.insertInto('instances').values({ id, project_id: project, name }).execute();
        await tx.insertInto('events').values({ instance_id: id, kind: 'created' }).execute();
        beforeCommit?.();
        return id;
      }),
    remove: (id) =>
      db.transaction().execute(async (tx) => {
        const { numDeletedRows } = await tx.deleteFrom('instances').where('id', '=', id).executeTakeFirstOrThrow();
        if (numDeletedRows === 1n) await tx.insertInto('events').values({ instance_id: id, kind: 'deleted' }).execute();
        return numDeletedRows === 1n;
      }),
    close: () => db.destroy(),
  };
}
