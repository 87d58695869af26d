/**
 * One test suite, every engine: each test file loops over `engines`. PostgreSQL tests get a
 * fresh schema each, so files run in parallel on one server and leave nothing behind.
 * `ALLOT_TEST_ENGINES=sqlite` narrows the list for a quick local run; nothing is ever skipped
 * silently: an unreachable PostgreSQL fails the PostgreSQL tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openLedger, type Ledger } from '../../src/index.js';
import type { Clock } from '../../src/domain/clock.js';
import type { Engine } from '../../src/store/store.js';

export const postgresUrl = process.env.ALLOT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export const engines: Engine[] = (process.env.ALLOT_TEST_ENGINES ?? 'sqlite,postgres')
  .split(',')
  .map((name) => name.trim())
  .filter((name): name is Engine => name === 'sqlite' || name === 'postgres');

export interface TestDatabase {
  engine: Engine;
  /** A database URL that `openLedger`, `allot serve --db` and child processes accept. */
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database for one engine: a temporary SQLite file or a PostgreSQL schema. */
export async function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'allot-test-'));
    return {
      engine,
      url: `sqlite:${join(dir, 'allot.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is unreachable at ${postgresUrl} (set ALLOT_TEST_PG, or start it with ` +
        `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): ${String(error)}`,
    );
  }
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const separator = postgresUrl.includes('?') ? '&' : '?';
  return {
    engine,
    url: `${postgresUrl}${separator}schema=${schema}`,
    drop: async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(private ms = Date.parse('2026-01-01T00:00:00Z')) {}
  nowMs() {
    return this.ms;
  }
  advance(ms: number) {
    this.ms += ms;
  }
}

export interface TestLedger {
  ledger: Ledger;
  database: TestDatabase;
  close(): Promise<void>;
}

export async function openTestLedger(engine: Engine, clock?: Clock): Promise<TestLedger> {
  const database = await createTestDatabase(engine);
  const ledger = await openLedger({ db: database.url, clock });
  return {
    ledger,
    database,
    close: async () => {
      await ledger.close();
      await database.drop();
    },
  };
}

/** Invariant 1 and 2, checked from outside: counters equal the allocations, within limits. */
export async function assertLedgerInvariants(ledger: Ledger, organizations: string[]) {
  const discrepancies = await ledger.verifyCounters();
  if (discrepancies.length > 0) {
    throw new Error(`counters drifted: ${JSON.stringify(discrepancies)}`);
  }
  for (const organization of organizations) {
    for (const quota of await ledger.getQuotas(organization)) {
      if (quota.committed + quota.reserved + quota.held !== quota.used) {
        throw new Error('used is not committed + reserved + held');
      }
    }
  }
}
