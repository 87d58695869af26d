/**
 * `npm run bench:dashboard [-- --quick] [-- --engines sqlite,postgres]`: the reads the dashboard
 * makes for each view, through an `allot serve` process, at 1,000 organizations and 100,000
 * allocations in one organization. Target: every view's requests answer within 100 ms at the
 * 99th percentile (a page that feels immediate), at a concurrency of 4 (a few operators at
 * once). Prints a table and writes bench/results/dashboard.json.
 */
import { writeFileSync } from 'node:fs';
import { Pool } from 'undici';
import { openLedger } from '../src/index.js';
import type { Engine } from '../src/store/store.js';
import { dropDatabases, freshDatabase, makeAllocations, makeOrganizations, startServer } from './fixtures.js';
import { round, runLoad } from './load.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const engineFlag = args.indexOf('--engines');
const engines = (engineFlag >= 0 ? args[engineFlag + 1]! : 'sqlite,postgres').split(',') as Engine[];
const concurrency = 4;
const durationMs = quick ? 1000 : 3000;
const organizations = 1000;
const allocations = 100_000;
const limitedProjects = 100;
const targetP99Ms = 100;
const token = 'bench-token';
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Row {
  view: string;
  engine: Engine;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  withinTarget: boolean;
}

async function benchEngine(engine: Engine): Promise<Row[]> {
  log(`${engine}:`);
  const url = await freshDatabase(engine, 'dashboard');
  const ledger = await openLedger({ db: url });
  const started = Date.now();
  await ledger.putKind('gpus', { displayName: 'GPUs' });
  await makeOrganizations(ledger, 'org-', organizations, 1_000_000);
  await makeAllocations(ledger, 'org-0', allocations);
  for (let index = 0; index < limitedProjects; index += 1) {
    await ledger.putProject('org-0', `proj-${index}`, {});
    await ledger.setLimit('org-0', `proj-${index}`, 'compute', 'instances', [{ region: 'eu-1', limit: 10 }, { region: 'us-1', limit: 10 }]);
  }
  // PostgreSQL's autovacuum analyzes a table that grew by 100,000 rows within a minute; the
  // bulk fixture is measured as that settled database, not the minute before.
  if (engine === 'postgres') await ledger.store.transaction((tx) => tx.run('ANALYZE'));
  await ledger.close();
  log(`  populated in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const server = await startServer(url, token);
  const pool = new Pool(server.url, { connections: concurrency });
  const get = async (path: string) => {
    const response = await pool.request({ path, method: 'GET', headers: { authorization: `Bearer ${token}` } });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`GET ${path}: ${response.statusCode} ${text}`);
    return JSON.parse(text) as { items: unknown[]; nextCursor: string | null };
  };
  // A cursor half-way through the allocations: the page a user reaches by paging far.
  let cursor: string | null = null;
  for (let page = 0; page < allocations / 2 / 1000; page += 1) {
    cursor = (await get(`/v1/organizations/org-0/allocations?limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).nextCursor;
  }
  const random = (count: number) => Math.floor(Math.random() * count);
  const views: [string, () => Promise<unknown>][] = [
    ['organizations: a page with quotas', () => get('/v1/organizations?include=quotas&limit=25')],
    ['organizations: filtered by prefix', () => get(`/v1/organizations?include=quotas&limit=25&prefix=org-${random(100)}`)],
    ['organization: quotas', () => get('/v1/organizations/org-0/quotas')],
    [
      'organization: 10 projects with envelopes',
      async () => {
        const projects = await get('/v1/organizations/org-0/projects?limit=10');
        await Promise.all((projects.items as { id: string }[]).map((project) => get(`/v1/organizations/org-0/projects/${project.id}/quotas`)));
      },
    ],
    ['allocations: first page of 100k', () => get('/v1/organizations/org-0/allocations?limit=25')],
    ['allocations: page at 50k', () => get(`/v1/organizations/org-0/allocations?limit=25&cursor=${cursor}`)],
    ['allocations: search by resource', () => get(`/v1/organizations/org-0/allocations?limit=25&resourceKind=vm&resourceId=pre-${random(allocations)}`)],
    ['journal: newest 50', () => get('/v1/organizations/org-0/journal?tail=50')],
    ['limits: a page of 10 projects', () => get('/v1/organizations/org-0/limits?limit=10')],
  ];
  const rows: Row[] = [];
  try {
    for (const [view, operation] of views) {
      const result = await runLoad(concurrency, durationMs, async () => void (await operation()));
      if (result.failures > 0) throw new Error(`${view}: ${result.firstFailure}`);
      const row = {
        view,
        engine,
        requests: result.operations,
        perSecond: round(result.throughput, 0),
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        withinTarget: result.p99Ms <= targetP99Ms,
      };
      rows.push(row);
      log(`  ${view}: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms`);
    }
  } finally {
    await pool.close();
    server.child.kill('SIGTERM');
  }
  return rows;
}

async function main() {
  const started = Date.now();
  const rows: Row[] = [];
  for (const engine of engines) rows.push(...(await benchEngine(engine)));
  await dropDatabases();
  const result = {
    date: new Date().toISOString(),
    quick,
    organizations,
    allocations,
    concurrency,
    targetP99Ms,
    rows,
    seconds: round((Date.now() - started) / 1000, 1),
  };
  writeFileSync(new URL('results/dashboard.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  process.stdout.write(
    [
      line(['view', 'engine', 'requests/s', 'p50 ms', 'p99 ms', `p99 ≤ ${targetP99Ms} ms`]),
      line(['---', '---', '---', '---', '---', '---']),
      ...rows.map((r) => line([r.view, r.engine, r.perSecond, r.p50Ms, r.p99Ms, r.withinTarget ? 'yes' : 'no'])),
    ].join('\n') + `\n\nwritten bench/results/dashboard.json in ${result.seconds} s\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
