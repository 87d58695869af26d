/** The example hosts by client, with the engines each is shown on. */
import type { Engine } from '../../src/limits/index.js';
import { openBetterSqliteHost } from './better-sqlite3.js';
import { openDrizzleHost } from './drizzle.js';
import type { Host } from './host.js';
import { openKyselyHost } from './kysely.js';
import { openPgHost } from './pg.js';

export const clients: Record<string, { open: (url: string) => Promise<Host>; engines: Engine[] }> = {
  pg: { open: openPgHost, engines: ['postgres'] },
  'better-sqlite3': { open: openBetterSqliteHost, engines: ['sqlite'] },
  kysely: { open: openKyselyHost, engines: ['sqlite', 'postgres'] },
  drizzle: { open: openDrizzleHost, engines: ['sqlite', 'postgres'] },
};
