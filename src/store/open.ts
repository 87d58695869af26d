import { openPostgresStore } from './postgres/store.js';
import { openSqliteStore } from './sqlite/store.js';
import type { Store } from './store.js';
import { tracedStore } from './traced.js';

export const defaultDatabase = 'sqlite:./data/allot.db';

/**
 * Opens a store from a database URL: `sqlite:PATH` (or `sqlite::memory:`) or
 * `postgres://…` / `postgresql://…` (optionally `?schema=NAME`).
 */
export function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new Error('sqlite: needs a path, e.g. sqlite:./data/allot.db');
    return tracedStore(openSqliteStore(path));
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return tracedStore(openPostgresStore(url));
  }
  throw new Error(`unsupported database URL "${url}": use sqlite:PATH or postgres://…`);
}
