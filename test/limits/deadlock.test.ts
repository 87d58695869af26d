// Goal: on PostgreSQL, transactions that create in several projects in different orders never
// deadlock on each other's trackers: the database applies each transaction's deltas at COMMIT in
// one order (region, type, project), whatever order the host wrote its rows in. (SQLite has one
// writer: two transactions never hold trackers at once there.)
// Method: the host's own `pg` Pool (no retry on deadlock, unlike allot's store), 60 transactions
// at once, each inserting a row in project a and one in b — half in that order, half reversed —
// with a pause between the two inserts so that they overlap. Every one must commit, and the
// trackers must equal the rows.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/engines.js';
import { countRows, openHost, type Host } from './host.js';
import { pgConfig } from '../../examples/hosts/host.js';

describe('transactions creating in two projects in opposite orders on postgres', () => {
  let database: TestDatabase;
  let host: Host;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    host = await openHost(database.url);
    pool = new pg.Pool({ ...pgConfig(database.url), max: 30 });
  });

  afterAll(async () => {
    await pool.end();
    await host.close();
    await database.drop();
  });

  it('all commit, with no deadlock, and the trackers equal the rows', async () => {
    for (const project of ['a', 'b']) await host.mixin.setLimit(project, 'instances', 1000);
    const create = async (i: number) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        for (const project of i % 2 === 0 ? ['a', 'b'] : ['b', 'a']) {
          await client.query('INSERT INTO instances (id, project_id, name) VALUES ($1, $2, $3)', [`${project}-${i}`, project, 'x']);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    };
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => create(i)));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    for (const project of ['a', 'b']) {
      expect(await countRows(host.store, project)).toBe(60);
      expect((await host.mixin.getTracker(project, 'instances')).used).toBe(60);
    }
  });
});
