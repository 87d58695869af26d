// Goal: the limits triggers hold against what a host (or a careless host developer) may do with
// its own SQL: rows with no project, project columns of other types, a project moved by an UPDATE
// that does not name the column (a generated column), a table registered twice under different
// names, large statements, and on PostgreSQL a session whose search_path or temporary tables
// shadow the mixin's tables. After each: refused or counted, and trackers equal to the rows.
// Method: each test gets a fresh database (SQLite file or PostgreSQL schema) with the standard
// test host (test/limits/host.ts) plus tables of its own, registered through the mixin; the
// writes go through the host's store outside mixin.transaction, as any client's would.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLimitExceeded, LimitsUsageError, type Store } from '../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { openHost, type Host } from './host.js';

const rejection = (promise: Promise<unknown>) => promise.then((value) => Promise.reject(new Error(`resolved ${String(value)}`)), (error: unknown) => error);

describe.each(engines)('the limits triggers against hostile SQL on %s', (engine) => {
  let database: TestDatabase;
  let host: Host;
  let store: Store;
  const run = (sql: string, params: (string | number | null)[] = []) => store.transaction((tx) => tx.run(sql, params));
  const used = async (project: string, type: string) => (await host.mixin.getTracker(project, type)).used;
  const count = async (table: string, column: string, project: string | number) =>
    Number((await store.transaction((tx) => tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [project])))?.n);

  beforeEach(async () => {
    database = await createTestDatabase(engine);
    host = await openHost(database.url);
    store = host.store;
  });

  afterEach(async () => {
    await host.close();
    await database.drop();
  });

  it('refuses a row with no project clearly, and lets such a row be deleted or moved into a project', async () => {
    await run('CREATE TABLE gadgets (id TEXT PRIMARY KEY, project TEXT NULL)');
    // Rows from before the table was registered, one with no project.
    await run("INSERT INTO gadgets (id, project) VALUES ('old-null', NULL), ('old-1', 'p1'), ('old-2', NULL)");
    await host.mixin.registerTable({ table: 'gadgets', resourceType: 'gadgets', projectColumn: 'project' });
    await host.mixin.setLimit('p1', 'gadgets', 2);
    expect(await used('p1', 'gadgets')).toBe(1);

    const error = await rejection(run("INSERT INTO gadgets (id, project) VALUES ('new-null', NULL)"));
    expect(String((error as Error).message)).toMatch(/NULL project cannot be counted/);
    expect(isLimitExceeded(error)).toBeUndefined();

    await run("DELETE FROM gadgets WHERE id = 'old-null'");
    await run("UPDATE gadgets SET project = 'p1' WHERE id = 'old-2'");
    expect(await used('p1', 'gadgets')).toBe(2);
    expect(isLimitExceeded(await rejection(run("INSERT INTO gadgets (id, project) VALUES ('x', 'p1')")))).toMatchObject({ limit: 2, used: 2 });
    // Moving a row out of every project frees its slot.
    await run("UPDATE gadgets SET project = NULL WHERE id = 'old-1'").catch(() => undefined);
    expect(await used('p1', 'gadgets')).toBe(await count('gadgets', 'project', 'p1'));
    expect(await host.mixin.recount()).toEqual([]);
  });

  it('counts a project column of another type by its text', async () => {
    await run('CREATE TABLE widgets (id TEXT PRIMARY KEY, project INTEGER NOT NULL)');
    await host.mixin.registerTable({ table: 'widgets', resourceType: 'widgets', projectColumn: 'project' });
    await host.mixin.setLimit('7', 'widgets', 1);
    await run("INSERT INTO widgets (id, project) VALUES ('a', 7)");
    expect(isLimitExceeded(await rejection(run("INSERT INTO widgets (id, project) VALUES ('b', 7)")))).toMatchObject({ project: '7', limit: 1 });
    expect(await used('7', 'widgets')).toBe(1);
    expect(await host.mixin.recount()).toEqual([]);
  });

  it('counts a move made by an UPDATE that does not name the project column (a generated column)', async () => {
    const project = engine === 'postgres' ? "split_part(path, '/', 1)" : "substr(path, 1, instr(path, '/') - 1)";
    await run(`CREATE TABLE folders (id TEXT PRIMARY KEY, path TEXT NOT NULL, project TEXT GENERATED ALWAYS AS (${project}) STORED)`);
    await host.mixin.registerTable({ table: 'folders', resourceType: 'folders', projectColumn: 'project' });
    await host.mixin.setLimit('p1', 'folders', 5);
    await host.mixin.setLimit('p2', 'folders', 1);
    await run("INSERT INTO folders (id, path) VALUES ('a', 'p1/a'), ('b', 'p1/b')");
    await run("UPDATE folders SET path = 'p2/a' WHERE id = 'a'");
    expect([await used('p1', 'folders'), await used('p2', 'folders')]).toEqual([1, 1]);
    expect(isLimitExceeded(await rejection(run("UPDATE folders SET path = 'p2/b' WHERE id = 'b'")))).toMatchObject({ project: 'p2', limit: 1 });
    expect(await host.mixin.recount()).toEqual([]);
  });

  it('refuses to register a table again under another resource type or project column', async () => {
    const again = await rejection(host.mixin.registerTable({ table: 'instances', resourceType: 'servers', projectColumn: 'project_id' }));
    expect(again).toBeInstanceOf(LimitsUsageError);
    // The same registration again is fine.
    await host.mixin.registerTable({ table: 'instances', resourceType: 'instances', projectColumn: 'project_id' });
  });

  it('counts a statement of 5,000 rows, and refuses one that passes the limit by a row', async () => {
    await host.mixin.setLimit('bulk', 'instances', 5000);
    const rows = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `('r${from + i}', 'bulk', 'x')`).join(', ');
    await run(`INSERT INTO instances (id, project_id, name) VALUES ${rows(0, 5000)}`);
    expect(await used('bulk', 'instances')).toBe(5000);
    await run("DELETE FROM instances WHERE project_id = 'bulk' AND id < 'r3'");
    const freed = 5000 - (await count('instances', 'project_id', 'bulk'));
    expect(await used('bulk', 'instances')).toBe(5000 - freed);
    expect(isLimitExceeded(await rejection(run(`INSERT INTO instances (id, project_id, name) VALUES ${rows(10_000, freed + 1)}`)))).toMatchObject({
      project: 'bulk',
    });
    expect(await used('bulk', 'instances')).toBe(5000 - freed);
  });

  if (engine === 'postgres') {
    it("holds whatever the session's search_path, and a temporary table named like the mixin's does not shadow it", async () => {
      await host.mixin.setLimit('p1', 'instances', 1);
      const schema = new URL(database.url).searchParams.get('schema')!;
      const shadowed = await rejection(
        store.transaction(async (tx) => {
          await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', ['a', 'p1', 'x']);
          await tx.run('CREATE TEMPORARY TABLE allot_limit_deltas (tx TEXT, region TEXT, resource_type TEXT, project TEXT, delta BIGINT, id BIGINT)');
          await tx.get("SELECT set_config('search_path', 'pg_temp, public', true)");
          await tx.run(`INSERT INTO ${schema}.instances (id, project_id, name) VALUES (?, ?, ?)`, ['b', 'p1', 'x']);
        }),
      );
      expect(isLimitExceeded(shadowed)).toMatchObject({ project: 'p1', limit: 1, used: 0, requested: 2 });
      expect(await used('p1', 'instances')).toBe(0);
      expect(await count('instances', 'project_id', 'p1')).toBe(0);
    });
  }
});
