/**
 * A host written with Drizzle, on either engine: `db.transaction(…)` (asynchronous on
 * node-postgres, synchronous on better-sqlite3). On PostgreSQL Drizzle wraps the failed COMMIT
 * in its own error and `isLimitExceeded` looks through the `cause`; on SQLite the INSERT's own
 * error comes through.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { eq } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { pgTable, text as pgText } from 'drizzle-orm/pg-core';
import { sqliteTable, text } from 'drizzle-orm/sqlite-core';
import pg from 'pg';
import { adopt, hostTables, pgConfig, sqlitePath, type Host } from './host.js';

const pgInstances = pgTable('instances', { id: pgText('id').primaryKey(), projectId: pgText('project_id').notNull(), name: pgText('name').notNull() });
const pgEvents = pgTable('events', { instanceId: pgText('instance_id').notNull(), kind: pgText('kind').notNull() });
const sqliteInstances = sqliteTable('instances', { id: text('id').primaryKey(), projectId: text('project_id').notNull(), name: text('name').notNull() });
const sqliteEvents = sqliteTable('events', { instanceId: text('instance_id').notNull(), kind: text('kind').notNull() });

export async function openDrizzleHost(url: string): Promise<Host> {
  return url.startsWith('sqlite:') ? openOnSqlite(url) : openOnPostgres(url);
}

async function openOnPostgres(url: string): Promise<Host> {
  const pool = new pg.Pool({ ...pgConfig(url), max: 8 });
  for (const statement of hostTables) await pool.query(statement);
  await adopt(url);
  const db = drizzlePg(pool);
  return {
    create: (project, name, beforeCommit) =>
      db.transaction(async (tx) => {
        const id = randomUUID();
        await tx.insert(pgInstances).values({ id, projectId: project, name });
        await tx.insert(pgEvents).values({ instanceId: id, kind: 'created' });
        beforeCommit?.();
        return id;
      }),
    remove: (id) =>
      db.transaction(async (tx) => {
        const deleted = await tx.delete(pgInstances).where(eq(pgInstances.id, id)).returning({ id: pgInstances.id });
        if (deleted.length === 1) await tx.insert(pgEvents).values({ instanceId: id, kind: 'deleted' });
        return deleted.length === 1;
      }),
    close: () => pool.end(),
  };
}

async function openOnSqlite(url: string): Promise<Host> {
  const sqlite = new Database(sqlitePath(url), { timeout: 30_000 });
  for (const statement of hostTables) sqlite.exec(statement);
  await adopt(url);
  const db = drizzleSqlite(sqlite);
  return {
    create: async (project, name, beforeCommit) =>
      db.transaction(
        (tx) => {
          const id = randomUUID();
          tx.insert(sqliteInstances).values({ id, projectId: project, name }).run();
          tx.insert(sqliteEvents).values({ instanceId: id, kind: 'created' }).run();
          beforeCommit?.();
          return id;
        },
        { behavior: 'immediate' },
      ),
    remove: async (id) =>
      db.transaction(
        (tx) => {
          const { changes } = tx.delete(sqliteInstances).where(eq(sqliteInstances.id, id)).run();
          if (changes === 1) tx.insert(sqliteEvents).values({ instanceId: id, kind: 'deleted' }).run();
          return changes === 1;
        },
        { behavior: 'immediate' },
      ),
    close: async () => {
      sqlite.close();
    },
  };
}
