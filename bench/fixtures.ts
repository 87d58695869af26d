/**
 * Bulk fixtures made by the engine itself (recursive CTEs both engines run), so a benchmark
 * can start from 1,000 organizations or a million allocations in seconds, not hours; and the
 * server process the benchmarks drive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Ledger } from '../src/index.js';
import type { Engine } from '../src/store/store.js';

export const postgresUrl = process.env.ALLOT_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

let dir: string | undefined;
const schemas: string[] = [];

/** A fresh, empty database URL for `engine`. */
export async function freshDatabase(engine: Engine, name: string): Promise<string> {
  // Made on first use, so importing the bulk fixtures (as the dashboard's scale test does) leaves nothing behind.
  dir ??= mkdtempSync(join(tmpdir(), 'allot-bench-'));
  if (engine === 'sqlite') return `sqlite:${join(dir, `${name}-${randomBytes(3).toString('hex')}.db`)}`;
  const schema = `bench_${name.replace(/[^a-z0-9]/g, '_')}_${randomBytes(3).toString('hex')}`;
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  schemas.push(schema);
  return `${postgresUrl}?schema=${schema}`;
}

export async function dropDatabases(): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

const series = (name: string, count: number) =>
  `${name}(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM ${name} WHERE n + 1 < ${count})`;

/** Organizations `${prefix}0…`, each with project `p` and a quota of `quota` gpus. */
export async function makeOrganizations(ledger: Ledger, prefix: string, count: number, quota: number) {
  await ledger.store.transaction(async (tx) => {
    await tx.run(`WITH RECURSIVE ${series('s', count)}
      INSERT INTO organizations (id, display_name, created_at, updated_at)
      SELECT '${prefix}' || n, '${prefix}' || n, 0, 0 FROM s`);
    await tx.run(`WITH RECURSIVE ${series('s', count)}
      INSERT INTO projects (organization_id, id, display_name, created_at, updated_at)
      SELECT '${prefix}' || n, 'p', 'p', 0, 0 FROM s`);
    await tx.run(`WITH RECURSIVE ${series('s', count)}
      INSERT INTO quota_counters (organization_id, kind, quota, updated_at)
      SELECT '${prefix}' || n, 'gpus', ${quota}, 0 FROM s`);
  });
}

/** `count` live allocations of 1 gpu in `organization`/p, with the counter to match. */
export async function makeAllocations(ledger: Ledger, organization: string, count: number) {
  const batch = 100_000;
  for (let from = 0; from < count; from += batch) {
    const size = Math.min(batch, count - from);
    await ledger.store.transaction(async (tx) => {
      await tx.run(`WITH RECURSIVE ${series('s', size)}
        INSERT INTO allocations (id, organization_id, project_id, resource_kind, resource_id, state,
          generation, created_by, updated_by, created_at, updated_at)
        SELECT '${organization}-' || (n + ${from}), '${organization}', 'p', 'vm', 'pre-' || (n + ${from}), 'live',
          1, 'bench', 'bench', 0, 0 FROM s`);
      await tx.run(`WITH RECURSIVE ${series('s', size)}
        INSERT INTO allocation_lines (allocation_id, organization_id, kind, committed, reserved)
        SELECT '${organization}-' || (n + ${from}), '${organization}', 'gpus', 1, 0 FROM s`);
      await tx.run(
        `UPDATE quota_counters SET committed = committed + ${size} WHERE organization_id = ? AND kind = 'gpus'`,
        [organization],
      );
      // The project's counter too, as a decision keeps it (allot verify finds no drift).
      await tx.run(
        `INSERT INTO project_counters (organization_id, project_id, kind, committed, updated_at)
          VALUES (?, 'p', 'gpus', ${size}, 0)
          ON CONFLICT (organization_id, project_id, kind) DO UPDATE SET committed = project_counters.committed + ${size}`,
        [organization],
      );
    });
  }
}

/** A built `allot serve` (dist/, as `npm run bench` builds it) on `db`, accepting `token`. */
export function startServer(db: string, token: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['dist/cli/main.js', 'serve', '--port', '0', '--db', db], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, ALLOT_ADMIN_TOKEN: token, ALLOT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ url: match[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}
