/**
 * A host written with plain `pg`: a Pool, and a PoolClient in the host's own BEGIN … COMMIT.
 * Nothing here knows about limits except `adopt` at start: the database counts the rows and,
 * past the limit, fails the COMMIT.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { adopt, hostTables, pgConfig, type Host } from './host.js';

export async function openPgHost(url: string): Promise<Host> {
  const pool = new pg.Pool({ ...pgConfig(url), max: 8 });
  for (const statement of hostTables) await pool.query(statement);
  await adopt(url);

  async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  return {
    create: (project, name, beforeCommit) =>
      inTransaction(async (client) => {
        const id = randomUUID();
        await client.query('INSERT INTO instances (id, project_id, name) VALUES ($1, $2, $3)', [id, project, name]);
        await client.query("INSERT INTO events (instance_id, kind) VALUES ($1, 'created')", [id]);
        beforeCommit?.();
        return id;
      }),
    remove: (id) =>
      inTransaction(async (client) => {
        const { rowCount } = await client.query('DELETE FROM instances WHERE id = $1', [id]);
        if (rowCount) await client.query("INSERT INTO events (instance_id, kind) VALUES ($1, 'deleted')", [id]);
        return rowCount === 1;
      }),
    close: () => pool.end(),
  };
}
