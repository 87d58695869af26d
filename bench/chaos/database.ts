/**
 * The harness's own database work: the run's database (a fresh PostgreSQL schema, or a fresh
 * SQLite file), the PostgreSQL restart, and reads and writes behind the ledger's back — the
 * stored idempotent answers of requests the clients never heard back from, and the faults
 * `--inject-fault` plants to prove the checks can fail.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { openStore } from '../../src/index.js';
import type { Dialect, Executor } from '../../src/store/store.js';
import { sleep } from './random.js';

const run = promisify(execFile);

/** The run's own database: its URL for allot, its name for the report, and its lifetime. */
export interface RunDatabase {
  url: string;
  name: string;
  create(): Promise<void>;
  drop(): Promise<void>;
}

export function runDatabase(engine: 'sqlite' | 'postgres', postgresUrl: string, runId: string): RunDatabase {
  if (engine === 'sqlite') {
    const dir = join(tmpdir(), `allot-chaos-${runId}`);
    return {
      url: `sqlite:${join(dir, 'allot.db')}`,
      name: `SQLite file ${join(dir, 'allot.db')}`,
      create: async () => void mkdirSync(dir, { recursive: true }),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `chaos_${runId}`;
  return {
    url: `${postgresUrl}${postgresUrl.includes('?') ? '&' : '?'}schema=${schema}`,
    name: `schema ${schema}`,
    create: () => createSchema(postgresUrl, schema),
    drop: () => dropSchema(postgresUrl, schema),
  };
}

async function withClient<T>(postgresUrl: string, schema: string | null, work: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client({
    connectionString: postgresUrl,
    ...(schema === null ? {} : { options: `-c search_path=${schema}` }),
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function createSchema(postgresUrl: string, schema: string): Promise<void> {
  try {
    await withClient(postgresUrl, null, (client) => client.query(`CREATE SCHEMA ${schema}`));
  } catch (error) {
    throw new Error(
      `cannot create schema ${schema} at ${postgresUrl} (is PostgreSQL running? ` +
        `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): ${String(error)}`,
    );
  }
}

async function dropSchema(postgresUrl: string, schema: string): Promise<void> {
  await withClient(postgresUrl, null, (client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

/** Restarts the local PostgreSQL cluster and waits until it answers again. */
export async function restartPostgres(postgresUrl: string): Promise<void> {
  const command = process.env.ALLOT_CHAOS_PG_RESTART;
  if (command) {
    await run('sh', ['-c', command], { timeout: 60_000 });
  } else {
    const versions = readdirSync('/etc/postgresql');
    if (versions.length !== 1) {
      throw new Error(`expected one PostgreSQL version under /etc/postgresql, found: ${versions.join(', ')}`);
    }
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0]!, 'main', 'restart'], {
      timeout: 60_000,
    });
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await withClient(postgresUrl, null, (client) => client.query('SELECT 1'));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

export interface StoredKey {
  state: 'pending' | 'done';
  status: number | null;
  body: unknown;
}

/** Runs `work` in one transaction on the run's database, through allot's own store. */
async function withStore<T>(db: string, work: (tx: Executor, dialect: Dialect) => Promise<T>): Promise<T> {
  const store = openStore(db);
  try {
    return await store.transaction((tx) => work(tx, store.dialect));
  } finally {
    await store.close();
  }
}

/** The idempotency records of `keys` (principal "admin"): what a retry would be answered. */
export async function storedAnswers(db: string, keys: readonly string[]): Promise<Map<string, StoredKey>> {
  const found = new Map<string, StoredKey>();
  if (keys.length === 0) return found;
  const rows = await withStore(db, (tx, dialect) =>
    tx.all<{ idempotency_key: string; state: 'pending' | 'done'; status: number | string | null; body: string | null }>(
      `SELECT idempotency_key, state, status, body FROM idempotency_keys
        WHERE principal = 'admin' AND ${dialect.inList('idempotency_key')}`,
      [dialect.list(keys)],
    ),
  );
  for (const row of rows) {
    found.set(row.idempotency_key, {
      state: row.state,
      status: row.status === null ? null : Number(row.status),
      body: row.body === null ? undefined : (JSON.parse(row.body) as unknown),
    });
  }
  return found;
}

/** Ids of every record (live, deleted, hold in any state) of these referenced resources. */
export async function recordsOfResources(db: string, resourceIds: readonly string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (resourceIds.length === 0) return found;
  const rows = await withStore(db, (tx, dialect) =>
    tx.all<{ id: string; resource_id: string }>(`SELECT id, resource_id FROM allocations WHERE ${dialect.inList('resource_id')}`, [
      dialect.list(resourceIds),
    ]),
  );
  for (const row of rows) found.set(row.resource_id, [...(found.get(row.resource_id) ?? []), row.id]);
  return found;
}

/** Runs SQL statements in one transaction on the run's database (for planting faults). */
export function plant(db: string, work: (tx: Executor) => Promise<void>): Promise<void> {
  return withStore(db, (tx) => work(tx));
}
