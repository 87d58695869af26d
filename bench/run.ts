/**
 * `npm run bench [-- --quick] [-- --engines sqlite,postgres]`: allocation decisions through
 * the library and through HTTP, on SQLite and PostgreSQL, each scenario beside its two
 * references (the bare-engine ceiling and the seed's naive design) measured in the same run.
 * Prints a table and writes bench/results/latest.json. Ratios are what to compare over time:
 * absolute numbers move with the machine's mood.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Pool } from 'undici';
import { openLedger, type Ledger } from '../src/index.js';
import type { Engine } from '../src/store/store.js';
import { dropDatabases, freshDatabase, makeAllocations, makeOrganizations, postgresUrl, startServer } from './fixtures.js';
import { round, runLoad, type LoadResult, type Operation } from './load.js';
import { openCeiling, openNaive, type Reference } from './references.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const engines = (valueOf('--engines') ?? 'sqlite,postgres').split(',') as Engine[];
const concurrency = Number(valueOf('--concurrency') ?? 16);
const durationMs = quick ? 1000 : 5000;
const deepSizes = quick ? [10_000, 100_000] : [10_000, 1_000_000];
const spreadOrganizations = 1000;
const token = 'bench-token';

function valueOf(flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}

interface Row {
  name: string;
  engine: Engine;
  via: 'library' | 'http';
  concurrency: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  ceiling: number | null;
  naive: number | null;
  ratioCeiling: number | null;
  ratioNaive: number | null;
  serverRssMb?: number;
}

const rows: Row[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);

function record(name: string, engine: Engine, via: Row['via'], result: LoadResult, references: { ceiling?: number; naive?: number }) {
  const ceiling = references.ceiling ?? null;
  const naive = references.naive ?? null;
  const row: Row = {
    name,
    engine,
    via,
    concurrency,
    throughput: round(result.throughput, 1),
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    ceiling: ceiling === null ? null : round(ceiling, 1),
    naive: naive === null ? null : round(naive, 1),
    ratioCeiling: ceiling === null ? null : round(result.throughput / ceiling),
    ratioNaive: naive === null ? null : round(result.throughput / naive, 1),
  };
  if (result.failures > 0) {
    log(`  ! ${name} ${engine} ${via}: ${result.failures} failed operations, first: ${result.firstFailure}`);
  }
  rows.push(row);
  log(`  ${name.padEnd(12)} ${engine.padEnd(8)} ${via.padEnd(7)} ${row.throughput}/s p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms`);
  return row;
}

const pick = (count: number) => Math.floor(Math.random() * count);
const gpu = (id: string) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed: 1 }] });

/** The scenarios, each as one operation against the library or against HTTP. */
interface Target {
  allocate(organization: string, id: string): Promise<void>;
  holdAndConfirm(organization: string, id: string): Promise<void>;
}

/** `via` keeps resource ids of the library and HTTP runs apart (they share organizations). */
const scenarios = (target: Target, via: string): [string, Operation][] => [
  ['hot', (w, i) => target.allocate('hot', `${via}-h-${w}-${i}`)],
  ['spread', (w, i) => target.allocate(`s${pick(spreadOrganizations)}`, `${via}-s-${w}-${i}`)],
  ...deepSizes.map((size): [string, Operation] => [
    `deep-${label(size)}`,
    (w, i) => target.allocate(`deep${size}`, `${via}-d-${w}-${i}`),
  ]),
  ['holds', (w, i) => target.holdAndConfirm('holds', `${via}-c-${w}-${i}`)],
];

function label(size: number) {
  return size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`;
}

function libraryTarget(ledger: Ledger): Target {
  return {
    allocate: async (organization, id) => {
      await ledger.createAllocation(organization, 'p', gpu(id));
    },
    holdAndConfirm: async (organization, id) => {
      const hold = await ledger.createHold(organization, 'p', { ...gpu(id), ttlSeconds: 60 });
      await ledger.confirmHold(organization, 'p', hold.id);
    },
  };
}

/** HTTP through undici's pool (keep-alive, one connection per worker): a light client, so
 * the load generator takes as little of the machine's two cores from the server as it can. */
function httpTarget(base: string): Target {
  const pool = new Pool(base, { connections: concurrency });
  const post = async (path: string, body?: unknown) => {
    const response = await pool.request({
      path,
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`${response.statusCode} ${text}`);
    return JSON.parse(text) as { id: string };
  };
  return {
    allocate: async (organization, id) => {
      await post(`/v1/organizations/${organization}/projects/p/allocations`, gpu(id));
    },
    holdAndConfirm: async (organization, id) => {
      const hold = await post(`/v1/organizations/${organization}/projects/p/holds`, { ...gpu(id), ttlSeconds: 60 });
      await post(`/v1/organizations/${organization}/projects/p/holds/${hold.id}/confirm`);
    },
  };
}

async function setUp(ledger: Ledger) {
  const unlimitedish = 1e15;
  await ledger.putKind('gpus', { displayName: 'GPUs' });
  await makeOrganizations(ledger, 's', spreadOrganizations, unlimitedish);
  for (const name of ['hot', 'holds', ...deepSizes.map((size) => `deep${size}`)]) {
    await ledger.putOrganization(name, {});
    await ledger.putProject(name, 'p', {});
    await ledger.setQuotas(name, [{ kind: 'gpus', quantity: unlimitedish }]);
  }
  for (const size of deepSizes) {
    const started = Date.now();
    await makeAllocations(ledger, `deep${size}`, size);
    log(`  populated deep${size} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

/** Measures one reference for a scenario shape on a fresh database of its own. */
async function measureReference(
  engine: Engine,
  open: (engine: Engine, url: string) => Reference,
  name: string,
  counters: number,
  rowsPerCounter: number,
  pairs: boolean,
): Promise<number> {
  const reference = open(engine, await freshDatabase(engine, `ref-${name}`));
  try {
    await reference.prepare(counters, rowsPerCounter);
    const result = await runLoad(concurrency, durationMs, async (w, i) => {
      const counter = pick(counters);
      const id = `${w}-${i}`;
      await reference.decide(counter, id);
      if (pairs) await reference.confirm(counter, id);
    });
    return result.throughput;
  } finally {
    await reference.close();
  }
}

function rssMbOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return round(kb / 1024, 1);
}

async function benchEngine(engine: Engine) {
  log(`${engine}:`);
  const url = await freshDatabase(engine, 'allot');
  const ledger = await openLedger({ db: url });
  await setUp(ledger);
  const largest = deepSizes[deepSizes.length - 1]!;

  // The references, once per scenario shape.
  const reference = async (open: typeof openCeiling, name: string, counters: number, rowsPerCounter: number, pairs = false) =>
    measureReference(engine, open, name, counters, rowsPerCounter, pairs);
  const ceiling: Record<string, number> = {
    hot: await reference(openCeiling, 'hot', 1, 0),
    spread: await reference(openCeiling, 'spread', spreadOrganizations, 0),
    deep: await reference(openCeiling, 'deep', 1, largest),
    holds: await reference(openCeiling, 'holds', 1, 0, true),
  };
  const naive: Record<string, number> = {
    hot: await reference(openNaive, 'hot', 1, 0),
    [`deep-${label(deepSizes[0]!)}`]: await reference(openNaive, 'deep', 1, deepSizes[0]!),
    holds: await reference(openNaive, 'holds', 1, 0, true),
  };
  if (!quick) naive.spread = await reference(openNaive, 'spread', spreadOrganizations, 0);
  log(`  references: ceiling ${JSON.stringify(roundAll(ceiling))}, naive ${JSON.stringify(roundAll(naive))}`);

  const referencesOf = (name: string) => ({
    ceiling: ceiling[name.startsWith('deep') ? 'deep' : name],
    naive: naive[name],
  });

  for (const [name, operation] of scenarios(libraryTarget(ledger), 'library')) {
    record(name, engine, 'library', await runLoad(concurrency, durationMs, operation), referencesOf(name));
  }
  await ledger.close();

  const server = await startServer(url, token);
  try {
    for (const [name, operation] of scenarios(httpTarget(server.url), 'http')) {
      if (quick && name.startsWith('deep')) continue;
      const row = record(name, engine, 'http', await runLoad(concurrency, durationMs, operation), referencesOf(name));
      row.serverRssMb = rssMbOf(server.child.pid!);
    }
  } finally {
    server.child.kill('SIGTERM');
  }
}

const roundAll = (values: Record<string, number>) =>
  Object.fromEntries(Object.entries(values).map(([key, value]) => [key, round(value, 0)]));

async function machine() {
  let postgres: string | null = null;
  try {
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    postgres = (await client.query('SHOW server_version')).rows[0].server_version as string;
    await client.end();
  } catch {
    postgres = null;
  }
  const memory = new Database(':memory:');
  const sqlite = (memory.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  memory.close();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    sqlite,
    date: new Date().toISOString(),
    quick,
  };
}

function table(all: Row[]): string {
  const header = ['scenario', 'engine', 'via', 'conc', 'decisions/s', 'p50 ms', 'p99 ms', 'ceiling/s', 'naive/s', '×ceiling', '×naive'];
  const lines = all.map((r) => [
    r.name,
    r.engine,
    r.via,
    String(r.concurrency),
    String(r.throughput),
    String(r.p50Ms),
    String(r.p99Ms),
    r.ceiling === null ? '–' : String(r.ceiling),
    r.naive === null ? '–' : String(r.naive),
    r.ratioCeiling === null ? '–' : String(r.ratioCeiling),
    r.ratioNaive === null ? '–' : String(r.ratioNaive),
  ]);
  const format = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [format(header), format(header.map(() => '---')), ...lines.map(format)].join('\n');
}

async function main() {
  const started = Date.now();
  for (const engine of engines) await benchEngine(engine);
  await dropDatabases();
  const deep = engines.map((engine) => {
    const [small, large] = deepSizes.map((size) => rows.find((r) => r.engine === engine && r.via === 'library' && r.name === `deep-${label(size)}`)!);
    return { engine, sizes: deepSizes, ratio: round(large!.throughput / small!.throughput) };
  });
  const result = { machine: await machine(), scenarios: rows, deep, seconds: round((Date.now() - started) / 1000, 1) };
  writeFileSync(new URL('results/latest.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${table(rows)}\n\n`);
  for (const d of deep) {
    process.stdout.write(`deep ${d.engine}: ${label(d.sizes[1]!)} / ${label(d.sizes[0]!)} allocations throughput ratio ${d.ratio}\n`);
  }
  process.stdout.write(`written bench/results/latest.json in ${result.seconds} s\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
