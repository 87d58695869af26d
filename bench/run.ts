/**
 * `npm run bench [-- --quick] [-- --engines sqlite,postgres]`: decisions through the library
 * and through HTTP (driven by wrk), on SQLite and PostgreSQL, each scenario beside the bare
 * engine's one-decision-per-transaction ceiling at the same concurrency (and the seed's naive
 * design), all measured in the same run. Prints a table and writes bench/results/latest.json
 * (a quick run: quick.json).
 * Ratios are what to compare over time: absolute numbers move with the machine's mood.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openLedger, type Ledger } from '../src/index.js';
import type { Engine } from '../src/store/store.js';
import { dropDatabases, freshDatabase, makeAllocations, makeOrganizations, startServer } from './fixtures.js';
import { round, runLoad, type LoadResult } from './load.js';
import { machine, rssMbOf, table, type Row } from './report.js';
import { openCeiling, openNaive } from './references.js';
import { hasWrk, runWrk, type WrkShape } from './wrk.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const engines = (valueOf('--engines') ?? 'sqlite,postgres').split(',') as Engine[];
const durationMs = quick ? 1000 : 5000;
const deepSizes = quick ? [10_000, 100_000] : [10_000, 1_000_000];
const concurrencies = [16, 64, 256];
/** Deep and holds run at one concurrency: what they measure is size and pairs, not load. */
const steadyConcurrency = 64;
const batchSize = 1000;
const batchConcurrency = 4;
const spreadOrganizations = 1000;
const token = 'bench-token-0123456789abcdef0123456789';

function valueOf(flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const label = (size: number) => (size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`);
const pick = (count: number) => Math.floor(Math.random() * count);
const gpu = (id: string) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed: 1 }] });
const spreadNames = Array.from({ length: spreadOrganizations }, (_, i) => `s${i}`);

/** One measured scenario: its shape (what a request does) and its load. */
interface Scenario {
  name: string;
  /** The ceiling it is measured against: a shape at a concurrency. */
  ceiling: { shape: 'hot' | 'spread' | 'deep' | 'holds'; concurrency: number };
  naive?: string;
  concurrency: number;
  /** Decisions per request: a batch's entries. */
  perRequest: number;
  library(ledger: Ledger, prefix: string): (worker: number, sequence: number) => Promise<void>;
  http: WrkShape;
}

function scenarios(): Scenario[] {
  const allocate = (organizations: () => string) => (ledger: Ledger, prefix: string) => async (w: number, i: number) => {
    await ledger.createAllocation(organizations(), 'p', gpu(`${prefix}-${w}-${i}`));
  };
  const hot = allocate(() => 'hot');
  const list: Scenario[] = [
    { name: 'alone', ceiling: { shape: 'hot', concurrency: 1 }, concurrency: 1, perRequest: 1, library: hot, http: { kind: 'allocate', organizations: ['hot'] } },
  ];
  for (const concurrency of concurrencies) {
    list.push({ name: 'hot', ceiling: { shape: 'hot', concurrency }, naive: 'hot', concurrency, perRequest: 1, library: hot, http: { kind: 'allocate', organizations: ['hot'] } });
  }
  for (const concurrency of concurrencies) {
    list.push({
      name: 'spread',
      ceiling: { shape: 'spread', concurrency },
      naive: quick ? undefined : 'spread',
      concurrency,
      perRequest: 1,
      library: allocate(() => `s${pick(spreadOrganizations)}`),
      http: { kind: 'allocate', organizations: spreadNames },
    });
  }
  for (const size of deepSizes) {
    list.push({
      name: `deep-${label(size)}`,
      ceiling: { shape: 'deep', concurrency: steadyConcurrency },
      naive: size === deepSizes[0] ? 'deep' : undefined,
      concurrency: steadyConcurrency,
      perRequest: 1,
      library: allocate(() => `deep${size}`),
      http: { kind: 'allocate', organizations: [`deep${size}`] },
    });
  }
  list.push({
    name: 'holds',
    ceiling: { shape: 'holds', concurrency: steadyConcurrency },
    naive: 'holds',
    concurrency: steadyConcurrency,
    perRequest: 1,
    library: (ledger, prefix) => async (w, i) => {
      const hold = await ledger.createHold('holds', 'p', { ...gpu(`${prefix}-${w}-${i}`), ttlSeconds: 60 });
      await ledger.confirmHold('holds', 'p', hold.id);
    },
    http: { kind: 'holds', organization: 'holds' },
  });
  list.push({
    name: `batch-${batchSize}`,
    // Against the best single-decision ceiling measured: the one a batch has to beat.
    ceiling: { shape: 'hot', concurrency: 0 },
    concurrency: batchConcurrency,
    perRequest: batchSize,
    library: (ledger, prefix) => async (w, i) => {
      const entries = Array.from({ length: batchSize }, (_, n) => ({ op: 'allocation.create' as const, project: 'p', body: gpu(`${prefix}-${w}-${i}-${n}`) }));
      const { results } = await ledger.batch('batch', entries);
      const refused = results.find((r) => r.status !== 'applied');
      if (refused) throw new Error(`a batch entry was not applied: ${JSON.stringify(refused)}`);
    },
    http: { kind: 'batch', organization: 'batch', operations: batchSize },
  });
  return list;
}

async function setUp(ledger: Ledger) {
  const unlimitedish = 1e15;
  await ledger.putKind('gpus', { displayName: 'GPUs' });
  await makeOrganizations(ledger, 's', spreadOrganizations, unlimitedish);
  for (const name of ['hot', 'holds', 'batch', ...deepSizes.map((size) => `deep${size}`)]) {
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

/** The references, each on a fresh database of its own, at the concurrencies the scenarios use. */
async function measureReferences(engine: Engine, list: readonly Scenario[]) {
  const shapes = { hot: [1, 0], spread: [spreadOrganizations, 0], deep: [1, deepSizes[deepSizes.length - 1]!], holds: [1, 0] } as const;
  const measure = async (open: typeof openCeiling, shape: keyof typeof shapes, concurrency: number) => {
    const [counters, rows] = shapes[shape];
    const reference = open(engine, await freshDatabase(engine, `ref-${shape}`));
    try {
      await reference.prepare(counters, rows);
      const result = await runLoad(concurrency, durationMs, async (w, i) => {
        const counter = pick(counters);
        await reference.decide(counter, `${w}-${i}`);
        if (shape === 'holds') await reference.confirm(counter, `${w}-${i}`);
      });
      return result;
    } finally {
      await reference.close();
    }
  };
  const ceilings = new Map<string, LoadResult>();
  for (const { ceiling } of list) {
    const key = `${ceiling.shape}@${ceiling.concurrency}`;
    if (ceiling.concurrency > 0 && !ceilings.has(key)) ceilings.set(key, await measure(openCeiling, ceiling.shape, ceiling.concurrency));
  }
  const best = Math.max(...[...ceilings.entries()].filter(([key]) => key.startsWith('hot@')).map(([, r]) => r.throughput));
  const naive = new Map<string, number>();
  for (const name of new Set(list.map((s) => s.naive).filter((n): n is string => n !== undefined))) {
    naive.set(name, (await measure(openNaive, name as keyof typeof shapes, 16)).throughput);
  }
  log(`  ceilings ${[...ceilings].map(([key, r]) => `${key} ${Math.round(r.throughput)}/s`).join(', ')}; naive ${[...naive].map(([key, n]) => `${key} ${Math.round(n)}/s`).join(', ')}`);
  return {
    ceilingOf: (scenario: Scenario) =>
      scenario.ceiling.concurrency === 0 ? best : ceilings.get(`${scenario.ceiling.shape}@${scenario.ceiling.concurrency}`)!.throughput,
    ceilingLatencyOf: (scenario: Scenario) => ceilings.get(`${scenario.ceiling.shape}@${scenario.ceiling.concurrency}`),
    naiveOf: (scenario: Scenario) => (scenario.naive === undefined ? undefined : naive.get(scenario.naive)),
  };
}

/** Decisions per group commit, from the server's metrics. */
async function groupTotals(url: string): Promise<{ groups: number; operations: number }> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { groups: value('allot_group_decisions_count'), operations: value('allot_group_operations_total') };
}

/** The server's RSS per engine: idle with the population stored, and the most seen after a scenario. */
const memory: { engine: Engine; idleRssMb: number; peakRssMb: number }[] = [];

async function benchEngine(engine: Engine, rows: Row[], wrk: boolean) {
  log(`${engine}:`);
  const list = scenarios();
  const references = await measureReferences(engine, list);
  const url = await freshDatabase(engine, 'allot');
  let ledger = await openLedger({ db: url });
  await setUp(ledger);

  /** `throughput`: decisions a second (a batch's entries each count). */
  const record = (scenario: Scenario, via: Row['via'], result: LoadResult, throughput: number, perCommit: number, rssMb?: number) => {
    const ceiling = references.ceilingOf(scenario);
    const naive = references.naiveOf(scenario);
    const row: Row = {
      name: scenario.name,
      engine,
      via,
      concurrency: scenario.concurrency,
      throughput: round(throughput, 1),
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      perCommit: round(perCommit, 1),
      ceiling: round(ceiling, 1),
      ratioCeiling: round(throughput / ceiling),
      naive: naive === undefined ? null : round(naive, 1),
      ratioNaive: naive === undefined ? null : round(throughput / naive, 1),
      ...(scenario.name === 'alone' ? { ceilingP50Ms: references.ceilingLatencyOf(scenario)?.p50Ms } : {}),
      ...(rssMb === undefined ? {} : { serverRssMb: rssMb }),
    };
    if (result.failures > 0) log(`  ! ${scenario.name} ${engine} ${via}: ${result.failures} failed, first: ${result.firstFailure}`);
    rows.push(row);
    log(`  ${`${row.name}@${row.concurrency}`.padEnd(14)} ${via.padEnd(7)} ${row.throughput}/s ×${row.ratioCeiling} p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms, ${row.perCommit} per commit`);
  };

  for (const [index, scenario] of list.entries()) {
    const before = { ...ledger.engine.stats };
    const result = await runLoad(scenario.concurrency, durationMs, scenario.library(ledger, `lib${index}`));
    const after = ledger.engine.stats;
    record(scenario, 'library', result, result.throughput * scenario.perRequest, (after.operations - before.operations) / Math.max(1, after.groups - before.groups));
  }
  await ledger.close();

  if (!wrk) {
    log('  (no HTTP rows: wrk not found; apt-get install wrk)');
    return;
  }
  const server = await startServer(url, token);
  // The server's memory with the whole population stored (deep-1M included), before any load.
  const idleRssMb = rssMbOf(server.child.pid!);
  log(`  server RSS idle with ${deepSizes.reduce((a, b) => a + b, 0)} allocations stored: ${idleRssMb} MB`);
  memory.push({ engine, idleRssMb, peakRssMb: idleRssMb });
  try {
    for (const [index, scenario] of list.entries()) {
      if (quick && scenario.name.startsWith('deep')) continue;
      const run = (prefix: string, ms: number) =>
        runWrk({ url: server.url, token, shape: scenario.http, concurrency: scenario.concurrency, durationMs: ms, prefix });
      await run(`warm${index}`, 1000);
      const before = await groupTotals(server.url);
      const result = await run(`http${index}`, durationMs);
      const after = await groupTotals(server.url);
      const perCommit = (after.operations - before.operations) / Math.max(1, after.groups - before.groups);
      // wrk counts the decisions its answers report applied.
      const rssMb = rssMbOf(server.child.pid!);
      memory.at(-1)!.peakRssMb = Math.max(memory.at(-1)!.peakRssMb, rssMb);
      record(scenario, 'http', result, result.throughput, perCommit, rssMb);
    }
  } finally {
    server.child.kill('SIGTERM');
  }
  ledger = await openLedger({ db: url });
  const drift = await ledger.verifyCounters();
  await ledger.close();
  if (drift.length > 0) throw new Error(`counters drifted during the benchmark: ${JSON.stringify(drift.slice(0, 3))}`);
}

async function main() {
  const started = performance.now();
  const wrk = await hasWrk();
  const rows: Row[] = [];
  for (const engine of engines) await benchEngine(engine, rows, wrk);
  await dropDatabases();
  const deep = engines.map((engine) => {
    const [small, large] = deepSizes.map((size) => rows.find((r) => r.engine === engine && r.via === 'library' && r.name === `deep-${label(size)}`)!);
    return { engine, sizes: deepSizes, ratio: round(large!.throughput / small!.throughput) };
  });
  const result = { machine: await machine(quick), scenarios: rows, deep, memory, seconds: round((performance.now() - started) / 1000, 1) };
  // A quick run never replaces the full run the README quotes.
  const file = quick ? 'results/quick.json' : 'results/latest.json';
  writeFileSync(new URL(file, import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${table(rows)}\n\n`);
  for (const d of deep) {
    process.stdout.write(`deep ${d.engine}: ${label(d.sizes[1]!)} / ${label(d.sizes[0]!)} allocations throughput ratio ${d.ratio}\n`);
  }
  for (const m of memory) {
    process.stdout.write(`server RSS ${m.engine}: ${m.idleRssMb} MB idle with the population stored, at most ${m.peakRssMb} MB after a scenario\n`);
  }
  process.stdout.write(`written bench/${file} in ${result.seconds} s\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
