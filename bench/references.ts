/**
 * The two references every scenario is measured against, on the same engine and concurrency:
 * - ceiling: the bare engine doing the minimal equivalent transaction — one conditional
 *   counter update and one row insert — with no allot code in between: the physical limit of
 *   this design on this machine;
 * - naive: seed 000's design — a process-wide mutex around "sum every allocation of the
 *   organization, compare, insert", with no transaction.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Engine } from '../src/store/store.js';

export interface Reference {
  /** Prepares `counters` counters and, per counter, `rowsPerCounter` existing rows. */
  prepare(counters: number, rowsPerCounter: number): Promise<void>;
  /** One decision on counter `counter`; `id` is unique. */
  decide(counter: number, id: string): Promise<void>;
  /** The second step of a hold + confirm pair. */
  confirm(counter: number, id: string): Promise<void>;
  close(): Promise<void>;
}

const limit = 1e15;

export function openCeiling(engine: Engine, url: string): Reference {
  return engine === 'sqlite' ? sqliteCeiling(url) : postgresCeiling(url);
}

export function openNaive(engine: Engine, url: string): Reference {
  return engine === 'sqlite' ? sqliteNaive(url) : postgresNaive(url);
}

const tables = [
  'CREATE TABLE ref_counters (id BIGINT PRIMARY KEY, used BIGINT NOT NULL, lim BIGINT NOT NULL)',
  `CREATE TABLE ref_rows (id TEXT PRIMARY KEY, counter BIGINT NOT NULL, amount BIGINT NOT NULL,
    state TEXT NOT NULL)`,
  'CREATE INDEX ref_rows_by_counter ON ref_rows (counter)',
];

/** Rows for each counter, made by the engine itself (a recursive CTE both engines run). */
const fillRows = (counters: number, rowsPerCounter: number) => `
  WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n + 1 < ${counters}),
    r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n + 1 < ${rowsPerCounter})
  INSERT INTO ref_rows (id, counter, amount, state)
    SELECT 'pre-' || c.n || '-' || r.n, c.n, 1, 'live' FROM c, r`;

function sqliteOpen(url: string) {
  const db = new Database(url.slice('sqlite:'.length));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

function sqliteCeiling(url: string): Reference {
  const db = sqliteOpen(url);
  const update = () =>
    db.prepare('UPDATE ref_counters SET used = used + 1 WHERE id = ? AND used + 1 <= lim');
  return {
    async prepare(counters, rowsPerCounter) {
      for (const sql of tables) db.exec(sql);
      db.prepare(
        `WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n + 1 < ${counters})
          INSERT INTO ref_counters SELECT n, ${rowsPerCounter}, ${limit} FROM c`,
      ).run();
      if (rowsPerCounter > 0) db.exec(fillRows(counters, rowsPerCounter));
    },
    async decide(counter, id) {
      db.exec('BEGIN IMMEDIATE');
      if (update().run(counter).changes !== 1) throw new Error('ceiling refused');
      db.prepare("INSERT INTO ref_rows VALUES (?, ?, 1, 'held')").run(id, counter);
      db.exec('COMMIT');
    },
    async confirm(counter, id) {
      db.exec('BEGIN IMMEDIATE');
      update().run(counter);
      db.prepare("UPDATE ref_rows SET state = 'live' WHERE id = ?").run(id);
      db.exec('COMMIT');
    },
    async close() {
      db.close();
    },
  };
}

function postgresPool(url: string) {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  return new pg.Pool({
    connectionString: parsed.toString(),
    max: 16,
    options: schema ? `-c search_path=${schema}` : undefined,
  });
}

function postgresCeiling(url: string): Reference {
  const pool = postgresPool(url);
  const inTransaction = async (work: (client: pg.PoolClient) => Promise<void>) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      await work(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  };
  // Named statements, prepared once per connection: the ceiling gets every advantage allot has.
  const update = {
    name: 'ref_update',
    text: 'UPDATE ref_counters SET used = used + 1 WHERE id = $1 AND used + 1 <= lim',
  };
  const insert = { name: 'ref_insert', text: "INSERT INTO ref_rows VALUES ($1, $2, 1, 'held')" };
  const confirm = { name: 'ref_confirm', text: "UPDATE ref_rows SET state = 'live' WHERE id = $1" };
  return {
    async prepare(counters, rowsPerCounter) {
      for (const sql of tables) await pool.query(sql);
      await pool.query(
        `INSERT INTO ref_counters SELECT n, ${rowsPerCounter}, ${limit} FROM generate_series(0, ${counters - 1}) n`,
      );
      if (rowsPerCounter > 0) await pool.query(fillRows(counters, rowsPerCounter));
    },
    decide: (counter, id) =>
      inTransaction(async (client) => {
        const result = await client.query({ ...update, values: [counter] });
        if (result.rowCount !== 1) throw new Error('ceiling refused');
        await client.query({ ...insert, values: [id, counter] });
      }),
    confirm: (counter, id) =>
      inTransaction(async (client) => {
        await client.query({ ...update, values: [counter] });
        await client.query({ ...confirm, values: [id] });
      }),
    close: () => pool.end(),
  };
}

/** The seed's process-wide mutex. */
function mutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work);
    tail = run.catch(() => undefined);
    return run;
  };
}

function sqliteNaive(url: string): Reference {
  const db = sqliteOpen(url);
  const exclusive = mutex();
  const base = sqliteCeiling(url);
  return {
    prepare: (counters, rowsPerCounter) => base.prepare(counters, rowsPerCounter),
    decide: (counter, id) =>
      exclusive(async () => {
        const { used } = db
          .prepare('SELECT COALESCE(SUM(amount), 0) AS used FROM ref_rows WHERE counter = ?')
          .get(counter) as { used: number };
        if (used + 1 > limit) throw new Error('naive refused');
        db.prepare("INSERT INTO ref_rows VALUES (?, ?, 1, 'held')").run(id, counter);
      }),
    confirm: (_counter, id) =>
      exclusive(async () => {
        db.prepare("UPDATE ref_rows SET state = 'live' WHERE id = ?").run(id);
      }),
    async close() {
      db.close();
      await base.close();
    },
  };
}

function postgresNaive(url: string): Reference {
  const pool = postgresPool(url);
  const exclusive = mutex();
  const base = postgresCeiling(url);
  return {
    prepare: (counters, rowsPerCounter) => base.prepare(counters, rowsPerCounter),
    decide: (counter, id) =>
      exclusive(async () => {
        const result = await pool.query(
          'SELECT COALESCE(SUM(amount), 0)::bigint AS used FROM ref_rows WHERE counter = $1',
          [counter],
        );
        if (Number(result.rows[0].used) + 1 > limit) throw new Error('naive refused');
        await pool.query("INSERT INTO ref_rows VALUES ($1, $2, 1, 'held')", [id, counter]);
      }),
    confirm: (_counter, id) =>
      exclusive(async () => {
        await pool.query("UPDATE ref_rows SET state = 'live' WHERE id = $1", [id]);
      }),
    async close() {
      await pool.end();
      await base.close();
    },
  };
}
