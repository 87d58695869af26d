// Goal: one small host for the limits-mixin tests, so every file sets up the host's database the
// same way a real host would.
// Method: the host opens its own store, creates its own tables (a registered `instances` table
// counted by triggers, and an unregistered `volumes` table it declares itself), then opens the
// mixin on the same store. Helpers count the host's rows and read trackers straight from SQL.
import { openLimits, openStore, type LimitsMixin, type Store } from '../../src/limits/index.js';
import type { Clock } from '../../src/domain/clock.js';

export const region = 'eu-1';
export const instancesTable = { table: 'instances', resourceType: 'instances', projectColumn: 'project_id' };

export interface Host {
  store: Store;
  mixin: LimitsMixin;
  close(): Promise<void>;
}

export async function createHostTables(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    for (const statement of store.setupStatements) await tx.run(statement);
    await tx.run(`CREATE TABLE IF NOT EXISTS instances (
      id TEXT PRIMARY KEY,
      project_id TEXT NOT NULL,
      name TEXT NOT NULL
    )`);
    await tx.run(`CREATE TABLE IF NOT EXISTS volumes (
      id TEXT PRIMARY KEY,
      project TEXT NOT NULL
    )`);
  });
}

/** The host's store with its tables, and a mixin on it (closing the store once, ourselves). */
export async function openHost(url: string, options: { clock?: Clock; region?: string } = {}): Promise<Host> {
  const store = openStore(url);
  await createHostTables(store);
  const mixin = await openLimits({ db: store, region: options.region ?? region, tables: [instancesTable], clock: options.clock });
  return { store, mixin, close: () => store.close() };
}

export async function countRows(store: Store, project: string, table = 'instances'): Promise<number> {
  const column = table === 'instances' ? 'project_id' : 'project';
  const row = await store.transaction((tx) =>
    tx.get<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [project]),
  );
  return Number(row?.n ?? 0);
}

export async function rowIds(store: Store, project: string): Promise<string[]> {
  const rows = await store.transaction((tx) =>
    tx.all<{ id: string }>('SELECT id FROM instances WHERE project_id = ? ORDER BY id', [project]),
  );
  return rows.map((row) => row.id);
}

/** The stored tracker row, read with plain SQL (undefined if none). */
export async function storedTracker(
  store: Store,
  project: string,
  resourceType = 'instances',
  trackerRegion = region,
): Promise<{ limit: number; used: number } | undefined> {
  const row = await store.transaction((tx) =>
    tx.get<{ limit_value: number | string; used: number | string }>(
      'SELECT limit_value, used FROM allot_limit_trackers WHERE region = ? AND project = ? AND resource_type = ?',
      [trackerRegion, project, resourceType],
    ),
  );
  return row ? { limit: Number(row.limit_value), used: Number(row.used) } : undefined;
}

export async function insertInstances(mixin: LimitsMixin, project: string, ids: string[]): Promise<void> {
  await mixin.transaction(async (tx) => {
    for (const id of ids) await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', [id, project, `n-${id}`]);
  });
}

export async function leftoverDeltas(store: Store): Promise<number> {
  const row = await store.transaction((tx) => tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM allot_limit_deltas'));
  return Number(row?.n ?? 0);
}
