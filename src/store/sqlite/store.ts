import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteBusyTimeoutMs } from '../../domain/constants.js';
import { withRetries } from '../retry.js';
import { limitTriggers } from './limit-triggers.js';
import type { Executor, RowsWrite, SqlValue, Statement, Store, TransactionOptions } from '../store.js';

/**
 * SQLite through better-sqlite3: one connection per process, WAL with synchronous=FULL so an
 * acknowledged write survives a power cut. better-sqlite3 is synchronous but the ledger's
 * transaction code is async (it is shared with PostgreSQL), so transactions on the connection
 * are queued one after another: that queue is the connection's own single-writer rule, not a
 * quota mutex. Other processes on the same file are excluded by SQLite's lock (BEGIN IMMEDIATE).
 */
export function openSqliteStore(path: string): Store {
  if (path === ':memory:') return openConnection(path, () => undefined);
  // One connection per file per process. Two connections in one process would deadlock: the
  // second one's BEGIN IMMEDIATE waits (blocking the event loop) for a lock that the first can
  // only release when the event loop runs again.
  const key = resolve(path);
  let entry = openFiles.get(key);
  if (!entry) {
    entry = { users: 0, connection: openConnection(path, () => openFiles.delete(key)) };
    openFiles.set(key, entry);
  }
  entry.users += 1;
  const opened = entry;
  let released = false;
  return {
    ...opened.connection,
    close: async () => {
      if (released) return;
      released = true;
      opened.users -= 1;
      if (opened.users === 0) await opened.connection.close();
    },
  };
}

const openFiles = new Map<string, { users: number; connection: Store }>();

function openConnection(path: string, onClose: () => void): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // INSERT OR REPLACE then fires DELETE triggers for the rows it replaces (the limits mixin
  // counts them).
  db.pragma('recursive_triggers = ON');
  db.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);

  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };

  const executor: Executor = {
    async all<Row>(sql: string, params: readonly SqlValue[] = []) {
      return prepare(sql).all(...params) as Row[];
    },
    async get<Row>(sql: string, params: readonly SqlValue[] = []) {
      const statement = prepare(sql);
      if (!statement.reader) {
        return statement.all(...params)[0] as Row | undefined;
      }
      return statement.get(...params) as Row | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []) {
      return prepare(sql).run(...params).changes;
    },
    async selectMany(queries: readonly Statement[]) {
      return queries.map(({ sql, params }) => prepare(sql).all(...params));
    },
    async write(writes: readonly RowsWrite[]) {
      return writes.map((write) => {
        if (write.rows.length === 0) return 0;
        const names = write.op === 'insert' ? write.columns.map((c) => c.name) : write.op === 'update' ? [...write.columns.map((c) => c.name), ...write.keys] : write.keys;
        let changed = 0;
        // Inserts go many rows a statement: a row costs a bind, not a statement's run. Every
        // chunk but the last is full, so its statement is looked up once.
        const per = write.op === 'insert' ? insertRowsMax : 1;
        const full = prepare(sqlOf(write, Math.min(per, write.rows.length)));
        for (let from = 0; from < write.rows.length; from += per) {
          const rows = write.rows.slice(from, from + per);
          const values: SqlValue[] = [];
          for (const row of rows) for (const name of names) values.push(row[name] ?? null);
          const statement = rows.length === per || from === 0 ? full : prepare(sqlOf(write, rows.length));
          changed += statement.run(...values).changes;
        }
        return changed;
      });
    },
  };

  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const counts = { transactions: 0, retries: {} as Record<string, number> };

  const runOnce = async <T>(work: (tx: Executor) => Promise<T>, options: TransactionOptions) => {
    db.exec(options.readOnly ? 'BEGIN' : 'BEGIN IMMEDIATE');
    try {
      const result = await work(executor);
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  };

  return {
    engine: 'sqlite',
    dialect: {
      shareRowsSuffix: '',
      keyShareRowsSuffix: '',
      lockRowsSuffix: '',
      exclusiveRowsSuffix: '',
      concurrentWrites: false,
      inList: (column) => `${column} IN (SELECT value FROM json_each(?))`,
      list: (values) => JSON.stringify(values),
      listValues: () => 'SELECT value FROM json_each(?)',
      inQuery: (column, subquery) => `${column} IN (${subquery})`,
      // (The lock suffixes are empty: the write transaction holds the database.)
      keyed: (table, columns, { filter, more } = {}) =>
        `FROM ${table} t WHERE (${columns.map((c) => `t.${c}`).join(', ')}) IN (SELECT ${columns
          .map((_, i) => `json_extract(value, '$[${i}]')`)
          .join(', ')} FROM json_each(?)${more ? ` UNION ALL ${more}` : ''})${filter ? ` AND ${filter}` : ''}`,
      keys: (rows) => [JSON.stringify(rows)],
      limitTriggers,
    },
    setupStatements: [],
    transaction<T>(work: (tx: Executor) => Promise<T>, options: TransactionOptions = {}) {
      if (closed) return Promise.reject(new Error('store is closed'));
      counts.transactions += 1;
      const result = queue.then(() => withRetries(() => runOnce(work, options), isBusy, () => (counts.retries.busy = (counts.retries.busy ?? 0) + 1)));
      queue = result.catch(() => undefined).finally(() => (counts.transactions -= 1));
      return result;
    },
    isUniqueViolation,
    stats: () => ({ pool: { total: 1, idle: counts.transactions === 0 ? 1 : 0, waiting: Math.max(0, counts.transactions - 1), max: 1 }, retries: { ...counts.retries } }),
    async close() {
      closed = true;
      onClose();
      await queue;
      db.close();
    },
  };
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Another process held the write lock for longer than busy_timeout. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT';
}

/** Rows an INSERT statement takes at most (each size a prepared statement of its own). */
const insertRowsMax = 32;

/** A write's statement for `count` rows (an update or delete takes one). */
function sqlOf(write: RowsWrite, count: number): string {
  const { table, keys, columns } = write;
  const where = keys.map((key) => `${key} = ?`).join(' AND ');
  switch (write.op) {
    case 'insert': {
      const row = `(${columns.map(() => '?').join(', ')})`;
      return `INSERT INTO ${table} (${columns.map((c) => c.name).join(', ')}) VALUES ${Array.from({ length: count }, () => row).join(', ')} ${write.conflict ?? ''}`;
    }
    case 'update':
      return `UPDATE ${table} SET ${columns.map((c) => `${c.name} = ?`).join(', ')} WHERE ${where}`;
    case 'delete':
      return `DELETE FROM ${table} WHERE ${where}`;
  }
}
