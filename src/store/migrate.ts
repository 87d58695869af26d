import type { Executor, Store } from './store.js';

/**
 * Versioned schema migrations, applied in order on start. Each runs in its own transaction
 * together with the insert of its row in `schema_migrations`; two processes starting at once
 * both try, the second one's insert conflicts on the primary key, and it rolls back and moves
 * on. That needs no advisory lock, so it also runs on Postgres-wire distributed engines.
 * The SQL is the portable subset of both engines; quantities and times are BIGINT
 * (times in milliseconds since the epoch).
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version BIGINT PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/**
 * Applies every migration of `list` not yet applied, recording them in `table` (the ledger's
 * own list and table, or the limits mixin's beside a host's tables).
 * Returns the versions this call applied.
 */
export async function applyMigrations(
  store: Store,
  nowMs: number,
  list: readonly Migration[],
  table: string,
): Promise<number[]> {
  await store.transaction(async (tx) => {
    for (const statement of store.setupStatements) await tx.run(statement);
    await tx.run(createMigrationsTable.replace('schema_migrations', table));
  }).catch((error: unknown) => {
    // Two processes creating the table at once: the loser sees a duplicate, or on PostgreSQL
    // "relation already exists" (42P07) or "type already exists" (42710, the table's row
    // type); the table exists either way.
    const code = (error as { code?: unknown } | null)?.code;
    if (!store.isUniqueViolation(error) && code !== '42P07' && code !== '42710') throw error;
  });
  const together = await applyTogether(store, nowMs, list, table);
  if (together !== undefined) return together;
  const applied: number[] = [];
  for (const migration of list) {
    const done = await store.transaction(async (tx) => {
      const row = await tx.get(`SELECT version FROM ${table} WHERE version = ?`, [migration.version]);
      if (row) return true;
      await applyOne(tx, migration, table, nowMs);
      return false;
    }).catch((error: unknown) => {
      if (store.isUniqueViolation(error)) return true;
      throw error;
    });
    if (!done) applied.push(migration.version);
  }
  return applied;
}

/** Records a migration as applied and runs it (its row first: a racing process conflicts on it). */
async function applyOne(tx: Executor, migration: Migration, table: string, nowMs: number): Promise<void> {
  await tx.run(`INSERT INTO ${table} (version, name, applied_at) VALUES (?, ?, ?)`, [migration.version, migration.name, nowMs]);
  for (const statement of migration.statements) await tx.run(statement);
}

/**
 * Every pending migration in one transaction (one commit, not one each: a new database is
 * ready in a fraction of the time). Undefined when another process applied one meanwhile (its
 * row's insert conflicts): the caller then goes one by one, skipping what is there.
 */
async function applyTogether(store: Store, nowMs: number, list: readonly Migration[], table: string): Promise<number[] | undefined> {
  return store
    .transaction(async (tx) => {
      const done = new Set((await tx.all<{ version: number | string }>(`SELECT version FROM ${table}`)).map((row) => Number(row.version)));
      const pending = list.filter((migration) => !done.has(migration.version));
      for (const migration of pending) await applyOne(tx, migration, table, nowMs);
      return pending.map((migration) => migration.version);
    })
    .catch((error: unknown) => {
      if (store.isUniqueViolation(error)) return undefined;
      throw error;
    });
}

/**
 * The versions of `list` not applied yet (all of them when the table is missing): a server
 * whose schema is behind its code is not ready (`/readyz`).
 */
export async function unappliedMigrations(
  store: Store,
  list: readonly Migration[],
  table: string,
): Promise<number[]> {
  const applied = await store
    .transaction((tx) => tx.all<{ version: number | string }>(`SELECT version FROM ${table}`), { readOnly: true })
    .catch(() => []);
  const done = new Set(applied.map((row) => Number(row.version)));
  return list.filter((migration) => !done.has(migration.version)).map((migration) => migration.version);
}
