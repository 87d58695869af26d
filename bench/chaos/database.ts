/**
 * The harness's own PostgreSQL work: the run's schema, the database restart, and reads and
 * writes behind the ledger's back — the stored idempotent answers of requests the clients
 * never heard back from, and the faults `--inject-fault` plants to prove the checks can fail.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';
import { sleep } from './random.js';

const run = promisify(execFile);

export function schemaUrl(postgresUrl: string, schema: string): string {
  return `${postgresUrl}${postgresUrl.includes('?') ? '&' : '?'}schema=${schema}`;
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

export async function createSchema(postgresUrl: string, schema: string): Promise<void> {
  try {
    await withClient(postgresUrl, null, (client) => client.query(`CREATE SCHEMA ${schema}`));
  } catch (error) {
    throw new Error(
      `cannot create schema ${schema} at ${postgresUrl} (is PostgreSQL running? ` +
        `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): ${String(error)}`,
    );
  }
}

export async function dropSchema(postgresUrl: string, schema: string): Promise<void> {
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

/** The idempotency records of `keys` (principal "admin"): what a retry would be answered. */
export async function storedAnswers(
  postgresUrl: string,
  schema: string,
  keys: readonly string[],
): Promise<Map<string, StoredKey>> {
  const found = new Map<string, StoredKey>();
  if (keys.length === 0) return found;
  await withClient(postgresUrl, schema, async (client) => {
    const result = await client.query<{ idempotency_key: string; state: 'pending' | 'done'; status: string | null; body: string | null }>(
      `SELECT idempotency_key, state, status, body FROM idempotency_keys
        WHERE principal = 'admin' AND idempotency_key = ANY($1)`,
      [keys],
    );
    for (const row of result.rows) {
      found.set(row.idempotency_key, {
        state: row.state,
        status: row.status === null ? null : Number(row.status),
        body: row.body === null ? undefined : (JSON.parse(row.body) as unknown),
      });
    }
  });
  return found;
}

/** Ids of every record (live, deleted, hold in any state) of these referenced resources. */
export async function recordsOfResources(
  postgresUrl: string,
  schema: string,
  resourceIds: readonly string[],
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (resourceIds.length === 0) return found;
  await withClient(postgresUrl, schema, async (client) => {
    const result = await client.query<{ id: string; resource_id: string }>(
      'SELECT id, resource_id FROM allocations WHERE resource_id = ANY($1)',
      [resourceIds],
    );
    for (const row of result.rows) found.set(row.resource_id, [...(found.get(row.resource_id) ?? []), row.id]);
  });
  return found;
}

/** Runs SQL statements in one transaction on the run's schema (for planting faults). */
export async function plant(
  postgresUrl: string,
  schema: string,
  work: (query: (sql: string, params?: unknown[]) => Promise<pg.QueryResult>) => Promise<void>,
): Promise<void> {
  await withClient(postgresUrl, schema, async (client) => {
    await client.query('BEGIN');
    try {
      await work((sql, params) => client.query(sql, params));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  });
}
