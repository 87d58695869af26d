import pg from 'pg';
import { postgresConnectTimeoutMs, postgresPoolSizeMax } from '../../domain/constants.js';
import { AllotError } from '../../domain/errors.js';
import { withRetries } from '../retry.js';
import { HostPools, parseHosts } from './hosts.js';
import { limitTriggers } from './limit-triggers.js';
import type { Executor, RowsWrite, SqlValue, Statement, Store, TransactionOptions } from '../store.js';

const int8Oid = 20;

/**
 * PostgreSQL through node-postgres. Each transaction runs at READ COMMITTED (said explicitly,
 * not left to the server's default) and takes row locks on the usage counters it changes, so
 * any number of allot processes on one database decide correctly. A connection string may carry
 * `?schema=NAME` to keep allot's tables in their own schema (the tests use one per run).
 */
export function openPostgresStore(url: string, poolSize = postgresPoolSizeMax): Store {
  const { connectionString, schema } = splitSchema(url);
  const pools = new HostPools(parseHosts(connectionString), {
    max: poolSize,
    // A host that is gone without a word (no reset) is given up in seconds, not the system's
    // minutes: the next host is tried, or the request answers 503.
    connectionTimeoutMillis: postgresConnectTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Generic plans: allot's statements name rows by key lists (= ANY), which an index serves
    // whatever the values, so planning them once per connection is enough; a custom plan per
    // execution cost more than the execution.
    options: `-c plan_cache_mode=force_generic_plan${schema ? ` -c search_path=${schema}` : ''}`,
    // Quantities are bounded by quantityMax (2^53-1), so int8 columns fit a JS number exactly.
    types: {
      getTypeParser: ((oid: number, format: 'text' | 'binary') =>
        oid === int8Oid ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  const retries: Record<string, number> = {};

  return {
    engine: 'postgres',
    dialect: {
      shareRowsSuffix: ' FOR SHARE',
      keyShareRowsSuffix: ' FOR KEY SHARE',
      lockRowsSuffix: ' FOR NO KEY UPDATE',
      exclusiveRowsSuffix: ' FOR UPDATE',
      concurrentWrites: true,
      inList: (column) => `${column} = ANY(?)`,
      list: (values) => values,
      listValues: () => 'SELECT unnest(CAST(? AS text[]))',
      inQuery: (column, subquery) => `${column} = ANY(ARRAY(${subquery}))`,
      // A nested loop over the sorted keys, each probing the table in a subquery that OFFSET 0
      // keeps from being flattened into a join the planner could hash.
      keyed: (table, columns, { filter, more, lock = '' } = {}) => {
        const names = columns.map((_, i) => `k${i}`).join(', ');
        const keys = `SELECT * FROM unnest(${columns.map(() => 'CAST(? AS text[])').join(', ')})${more ? ` UNION ${more}` : ''} ORDER BY ${columns.map((_, i) => i + 1).join(', ')}`;
        const match = columns.map((c, i) => `x.${c} = k.k${i}`).join(' AND ');
        return `FROM (${keys}) AS k(${names}) CROSS JOIN LATERAL (SELECT x.* FROM ${table} x WHERE ${match}${filter ? ` AND ${filter}` : ''} OFFSET 0${lock}) t`;
      },
      keys: (rows, width) => Array.from({ length: width }, (_, i) => rows.map((row) => row[i]!)),
      limitTriggers,
    },
    setupStatements: schema ? [`CREATE SCHEMA IF NOT EXISTS ${schema}`] : [],
    transaction<T>(work: (tx: Executor) => Promise<T>, options: TransactionOptions = {}) {
      return withRetries(() => runOnce(pools, work, options), isRetryable, (error) => countRetry(retries, error));
    },
    isUniqueViolation: (error: unknown) => sqlState(error) === '23505',
    stats: () => {
      const pool = pools.inUse;
      return { pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }, retries: { ...retries } };
    },
    async close() {
      await pools.end();
    },
  };
}

function executorFor(client: pg.PoolClient): Executor {
  const query = (sql: string, params: readonly SqlValue[]) =>
    client.query({ ...statementOf(sql), values: params as SqlValue[] });
  return {
    async all<Row>(sql: string, params: readonly SqlValue[] = []) {
      return (await query(sql, params)).rows as Row[];
    },
    async get<Row>(sql: string, params: readonly SqlValue[] = []) {
      return (await query(sql, params)).rows[0] as Row | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []) {
      return (await query(sql, params)).rowCount ?? 0;
    },
    async selectMany(queries: readonly Statement[]) {
      if (queries.length === 1) return [(await query(queries[0]!.sql, queries[0]!.params)).rows];
      const sql = `SELECT ${queries.map(({ sql }, i) => `(SELECT COALESCE(json_agg(q${i}), '[]') FROM (${sql}) q${i}) AS r${i}`).join(', ')}`;
      const row = (await query(sql, queries.flatMap(({ params }) => params))).rows[0] as Record<string, unknown[]>;
      return queries.map((_, i) => row[`r${i}`]!);
    },
    async write(writes: readonly RowsWrite[]) {
      const present = writes.filter((write) => write.rows.length > 0);
      if (present.length === 0) return writes.map(() => 0);
      const statements = present.map(statementOfWrite);
      // One round trip: each write a data-modifying CTE, its count read in the select.
      const sql =
        statements.length === 1
          ? statements[0]!.sql
          : `WITH ${statements.map(({ sql }, i) => `s${i} AS (${sql} RETURNING 1)`).join(', ')} ` +
            `SELECT ${statements.map((_, i) => `(SELECT count(*) FROM s${i}) AS c${i}`).join(', ')}`;
      const result = await query(sql, statements.flatMap(({ params }) => params));
      const counts =
        statements.length === 1
          ? [result.rowCount ?? 0]
          : statements.map((_, i) => Number((result.rows[0] as Record<string, number>)[`c${i}`]));
      return writes.map((write) => (write.rows.length === 0 ? 0 : counts[present.indexOf(write)]!));
    },
  };
}

/**
 * One transaction on a connection of the host in use; a lost server becomes a 503
 * (databaseLost), and the next transaction tries the next host.
 */
async function runOnce<T>(pools: HostPools, work: (tx: Executor) => Promise<T>, options: TransactionOptions): Promise<T> {
  const { client, pool } = await pools.connect().catch((error: unknown) => {
    throw isConnectionLoss(error) ? databaseLost(error, false) : error;
  });
  let broken = false;
  let committing = false;
  // A connection that dies while checked out (the server restarts, the network drops)
  // emits 'error' on the client; unheard, that would crash the process. The query in
  // flight fails on its own, and the client is released as broken.
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    // One round trip: a simple query may hold several statements.
    await client.query(
      `BEGIN ISOLATION LEVEL ${options.snapshot ? 'REPEATABLE READ' : 'READ COMMITTED'} ` +
        (options.readOnly ? 'READ ONLY' : 'READ WRITE') +
        (options.byIndex
          ? '; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off'
          : ''),
    );
    const result = await work(executorFor(client));
    committing = true;
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    if (isConnectionLoss(error)) {
      pools.lost(pool);
      throw databaseLost(error, committing);
    }
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** Serialization failure and deadlock: the transaction did nothing and may run again. */
function isRetryable(error: unknown): boolean {
  const state = sqlState(error);
  return state === '40001' || state === '40P01';
}

/**
 * The server went away: a connection exception (SQLSTATE class 08), a shutdown or a crash of
 * the server or an administrator's termination (57P01–57P03), or the socket itself failing.
 * A read-only server (25006, a standby a failover left us on) is one too: writes must go to
 * the new primary.
 */
function isConnectionLoss(error: unknown): boolean {
  const state = sqlState(error);
  if (typeof state === 'string' && (state.startsWith('08') || /^57P0[123]$/.test(state) || state === '25006')) return true;
  if (typeof state === 'string' && /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN|NOTFOUND)$/.test(state)) return true;
  const message = error instanceof Error ? error.message : '';
  return /^Connection terminated|connection error and is not queryable|Connection is closed/.test(message);
}

/**
 * A lost server answers 503 (retry), never 500. Lost before COMMIT, nothing was written; lost
 * during it, the change may or may not have been made, and only the caller can find out: a
 * retry with the same Idempotency-Key answers what happened (the key is stored in the change's
 * own transaction), or the resource can be read back by its reference.
 */
function databaseLost(cause: unknown, committing: boolean): AllotError {
  const detail = committing
    ? 'the database connection was lost while the change was committing, so it may or may not have been made; ' +
      'retry with the same Idempotency-Key to get its outcome, or read the resource back'
    : 'the database is unavailable (its connection was lost or refused); nothing was changed, retry shortly';
  return new AllotError('service-unavailable', detail, {}, { cause });
}

/** A retry, counted by its reason. */
function countRetry(retries: Record<string, number>, error: unknown): void {
  const reason = sqlState(error) === '40P01' ? 'deadlock' : 'serialization-failure';
  retries[reason] = (retries[reason] ?? 0) + 1;
}

function sqlState(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/**
 * Each distinct SQL text becomes a named prepared statement: the server parses and plans it
 * once per connection instead of on every call. `?` placeholders are rewritten as `$1, $2, …`
 * (allot's SQL never has `?` inside a literal). The texts are allot's own, so their number is
 * bounded (the longest IN lists are bounded by the page size).
 */
const statements = new Map<string, { name: string; text: string }>();
function statementOf(sql: string): { name: string; text: string } {
  let statement = statements.get(sql);
  if (statement === undefined) {
    let index = 0;
    const text = sql.replace(/\?/g, () => `$${(index += 1)}`);
    statement = { name: `allot_${statements.size}`, text };
    statements.set(sql, statement);
  }
  return statement;
}

function splitSchema(url: string): { connectionString: string; schema: string | undefined } {
  // Not `new URL`: a host list (`h1:5432,h2:5433`) is no WHATWG URL.
  const mark = url.indexOf('?');
  const [base, query] = mark < 0 ? [url, ''] : [url.slice(0, mark), url.slice(mark + 1)];
  const params = new URLSearchParams(query);
  const schema = params.get('schema') ?? undefined;
  params.delete('schema');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`invalid schema name in database URL: ${schema}`);
  }
  return { connectionString: params.size > 0 ? `${base}?${params.toString()}` : base, schema };
}

/**
 * A write as one statement over its rows, passed as JSON. An update or delete also names its
 * rows' first key in an array (`= ANY`), so it finds them by index whatever the statistics say.
 */
function statementOfWrite(write: RowsWrite): { sql: string; params: SqlValue[] } {
  const { table, keys, columns, rows } = write;
  const all = [...keys.map((name) => ({ name, type: 'text' })), ...columns];
  const from = `json_to_recordset(CAST(? AS json)) AS v (${all.map(({ name, type }) => `${name} ${type}`).join(', ')})`;
  const json = JSON.stringify(rows);
  const matches = keys.map((key) => `${table}.${key} = v.${key}`).join(' AND ');
  const firstKeys = [...new Set(rows.map((row) => String(row[keys[0]!])))];
  switch (write.op) {
    case 'insert':
      return {
        sql: `INSERT INTO ${table} (${columns.map((c) => c.name).join(', ')}) SELECT ${columns.map((c) => `v.${c.name}`).join(', ')} FROM ${from} ${write.conflict ?? ''}`,
        params: [json],
      };
    case 'update':
      return {
        sql: `UPDATE ${table} SET ${columns.map((c) => `${c.name} = v.${c.name}`).join(', ')} FROM ${from} WHERE ${matches} AND ${table}.${keys[0]} = ANY(?)`,
        params: [json, firstKeys],
      };
    case 'delete':
      return { sql: `DELETE FROM ${table} USING ${from} WHERE ${matches} AND ${table}.${keys[0]} = ANY(?)`, params: [json, firstKeys] };
  }
}
