/**
 * Prometheus metrics (prom-client), served at /metrics: the controller's passes, reconcile
 * time and sync lag; the API's requests (latency by route and status, idempotent replays,
 * mutations and denials); each decision's latency by outcome and each operation's outcome (the
 * problem code, and the scope that refused a quota-exceeded); the group commit's sizes, times,
 * retries and queue; the store's connection pool and retried transactions; Node's process
 * metrics (event loop lag, heap, GC); and, read from the ledger at each scrape, quota usage and
 * limits and the limits' usage (capped in series: see quota-series.ts), and the hosts'
 * reachability. The HTTP hooks that feed the request metrics are in api/request-metrics.ts.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { metricsOrganizationsDefault } from '../domain/constants.js';
import { AllotError } from '../domain/errors.js';
import type { DecisionSettled, OperationOutcome } from '../ledger/engine/engine.js';
import type { Ledger } from '../ledger/ledger.js';
import { registerQuotaSeries } from './quota-series.js';

export interface ControllerMetrics {
  passes: Counter<'region' | 'outcome'>;
  /** Drifts the region's hosts found and fixed (their journals' drift entries, every cause). */
  drift: Counter<'region' | 'service'>;
  reconcileSeconds: Histogram<string>;
  /** From a tracker's last change to its usage reaching the limit. */
  syncLag: Histogram<string>;
}

/** What the API's hooks count (api/request-metrics.ts). */
export interface HttpMetrics {
  /** Every request, by route pattern ("POST /v1/…/:project/allocations") and status. */
  seconds: Histogram<'route' | 'status'>;
  /** Responses replayed for a repeated Idempotency-Key, by route. */
  replays: Counter<'route'>;
  /** Mutating API requests, by route and status. */
  mutations: Counter<'route' | 'status'>;
  /** Requests refused by a quota, cap or guarantee, by route. */
  denials: Counter<'route'>;
}

export interface Metrics {
  registry: Registry;
  controller: ControllerMetrics;
  http: HttpMetrics;
}

export interface MetricsOptions {
  /** Organizations that keep quota and limit series of their own (see quota-series.ts). */
  organizations?: number;
  /** Node's default process metrics (event loop lag, heap, GC); default true. */
  processMetrics?: boolean;
}

/** Latencies of requests and decisions, in seconds: 0.5 ms to 10 s. */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(ledger: Ledger, options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const metrics = { registry, controller: controllerMetrics(registry), http: httpMetrics(registry) };
  registerQuotaSeries(registry, ledger, options.organizations ?? metricsOrganizationsDefault);
  hostUpMetric(registry, ledger);
  decisionMetrics(registry, ledger);
  groupMetrics(registry, ledger);
  storeMetrics(registry, ledger);
  return metrics;
}

/**
 * A standalone controller's metrics (`allot controller --metrics-port`): its passes, reconcile
 * time, sync lag and drifts, the hosts' reachability and Node's process metrics. The quota and
 * limit series stay with `allot serve`, which reads the same books.
 */
export function createControllerMetrics(ledger: Ledger, options: Pick<MetricsOptions, 'processMetrics'> = {}) {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const controller = controllerMetrics(registry);
  hostUpMetric(registry, ledger);
  return { registry, controller };
}

function hostUpMetric(registry: Registry, ledger: Ledger): void {
  new Gauge({
    name: 'allot_region_host_up',
    help: '1 when the controller reached the host lately, 0 when it is stale or never reached',
    labelNames: ['region', 'service'],
    registers: [registry],
    async collect() {
      const hosts = await ledger.everyHostStatus();
      this.reset();
      for (const host of hosts) this.set({ region: host.region, service: host.service }, host.status === 'ok' ? 1 : 0);
    },
  });
}

function controllerMetrics(registry: Registry): ControllerMetrics {
  return {
    passes: new Counter({ name: 'allot_controller_passes_total', help: 'Reconcile passes, by outcome', labelNames: ['region', 'outcome'], registers: [registry] }),
    drift: new Counter({
      name: 'allot_drift_found_total',
      help: "Drifts the region's hosts found and fixed, of every cause (recounts, limit changes, leftover deltas)",
      labelNames: ['region', 'service'],
      registers: [registry],
    }),
    reconcileSeconds: new Histogram({ name: 'allot_controller_reconcile_seconds', help: 'Duration of one reconcile pass', registers: [registry] }),
    syncLag: new Histogram({
      name: 'allot_limit_sync_lag_seconds',
      help: "From a tracker's last change in its host to its usage reaching the limit in allot",
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
}

function httpMetrics(registry: Registry): HttpMetrics {
  return {
    seconds: new Histogram({
      name: 'allot_http_request_duration_seconds',
      help: 'HTTP requests, from arrival to the last byte of the response, by route pattern and status',
      labelNames: ['route', 'status'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    replays: new Counter({
      name: 'allot_http_idempotent_replays_total',
      help: 'Responses replayed to a repeated Idempotency-Key (Idempotent-Replayed: true), by route',
      labelNames: ['route'],
      registers: [registry],
    }),
    mutations: new Counter({ name: 'allot_http_mutations_total', help: 'Mutating API requests, by route and status', labelNames: ['route', 'status'], registers: [registry] }),
    denials: new Counter({
      name: 'allot_denials_total',
      help: 'Requests refused by a quota, cap or guarantee (quota-exceeded), by route',
      labelNames: ['route'],
      registers: [registry],
    }),
  };
}

/** An operation's or decision's labels: how it ended, the problem's code, the refusing scope. */
interface Ending {
  outcome: string;
  code: string;
  scope: string;
}

const refusal = (error: AllotError, outcome = 'refused'): Ending => ({
  outcome,
  code: error.code,
  scope: error.code === 'quota-exceeded' ? (error.extensions.violations?.[0]?.scope ?? '') : '',
});

const endingOf = (operation: OperationOutcome): Ending =>
  operation.status === 'refused' ? refusal(operation.error) : { outcome: operation.status, code: '', scope: '' };

/**
 * A decision's labels: applied (every operation), refused (none applied; the first refusal's
 * code and scope), partial (an independent batch, some of each), replayed (an idempotent
 * retry), pending (its key's first request still runs), failed (an error, not a refusal).
 */
export function decisionEnding(outcome: DecisionSettled['outcome']): Ending {
  if (outcome instanceof AllotError) return refusal(outcome, 'failed');
  if (outcome instanceof Error) return { outcome: 'failed', code: 'internal-error', scope: '' };
  if (outcome.kind === 'replayed' || outcome.kind === 'pending') return { outcome: outcome.kind, code: '', scope: '' };
  if (outcome.kind === 'reused') return { outcome: 'refused', code: 'idempotency-key-reused', scope: '' };
  const refused = outcome.outcomes.find((o) => o.status === 'refused');
  if (!refused) return { outcome: 'applied', code: '', scope: '' };
  return { ...endingOf(refused), outcome: outcome.outcomes.some((o) => o.status === 'applied') ? 'partial' : 'refused' };
}

function decisionMetrics(registry: Registry, ledger: Ledger): void {
  const labelNames = ['outcome', 'code', 'scope'] as const;
  const seconds = new Histogram({
    name: 'allot_decision_seconds',
    help: 'Decisions (a request or a batch), from their arrival in the queue to their answer, by outcome, problem code and refusing scope',
    labelNames,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const operations = new Counter({
    name: 'allot_operations_total',
    help: "Operations decided (a batch's each), by outcome (applied, refused, not-applied), problem code and refusing scope",
    labelNames,
    registers: [registry],
  });
  ledger.engine.onDecision(({ outcome, seconds: taken }) => {
    seconds.observe({ ...decisionEnding(outcome) }, taken);
    if (outcome instanceof Error || outcome.kind !== 'decided') return;
    for (const operation of outcome.outcomes) operations.inc({ ...endingOf(operation) });
  });
}

/**
 * The group commit: how many decisions share a commit, how long a group takes, how often a
 * group runs again (a race learned at write time) or splits (a row the database refused).
 */
function groupMetrics(registry: Registry, ledger: Ledger): void {
  const groupSize = new Histogram({
    name: 'allot_group_decisions',
    help: 'Decisions per group commit (requests and batches, each one decision)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    registers: [registry],
  });
  const groupSeconds = new Histogram({
    name: 'allot_group_commit_seconds',
    help: "A group's transaction, from its start to its commit",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  ledger.engine.onGroup((group) => {
    groupSize.observe(group.decisions);
    groupSeconds.observe(group.seconds);
  });
  // The engine counts these; a scrape reads its totals.
  const totals = {
    operations: 'Operations decided by group commits (a batch counts each of its entries)',
    retries: 'Groups run again after losing a race they learn of only when writing',
    splits: 'Groups the database refused before their commit, run again one decision at a time',
  } as const;
  for (const [key, help] of Object.entries(totals) as [keyof typeof totals, string][]) {
    new Counter({
      name: `allot_group_${key}_total`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(ledger.engine.stats[key]);
      },
    });
  }
  new Gauge({
    name: 'allot_decisions_waiting',
    help: 'Decisions queued for the next group (beyond the queue bound they are refused with 503)',
    registers: [registry],
    collect() {
      this.set(ledger.engine.waiting);
    },
  });
}

/** The store: its connections (PostgreSQL's pool; SQLite's one connection) and retried transactions. */
function storeMetrics(registry: Registry, ledger: Ledger): void {
  const pool = {
    total: 'Database connections open (SQLite: its one connection)',
    idle: 'Open database connections that are idle',
    waiting: 'Transactions waiting for a database connection',
    max: 'The most database connections the store opens (PostgreSQL: the pool size; SQLite: 1)',
  } as const;
  for (const [key, help] of Object.entries(pool) as [keyof typeof pool, string][]) {
    new Gauge({
      name: `allot_db_pool_${key}`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        const stats = ledger.storeStats();
        if (stats) this.set(stats.pool[key]);
      },
    });
  }
  new Counter({
    name: 'allot_replica_reads_total',
    help: 'With --db-read: reads that tolerate lag, by where they were answered (replica; primary: fresh data asked for or a recent change here; fallback: the replica failed)',
    labelNames: ['answered_by'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [answeredBy, count] of Object.entries(ledger.replicaReads() ?? {})) this.inc({ answered_by: answeredBy }, count);
    },
  });
  new Counter({
    name: 'allot_db_transaction_retries_total',
    help: 'Transactions run again, by reason (PostgreSQL: serialization-failure, deadlock; SQLite: busy)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(ledger.storeStats()?.retries ?? {})) this.inc({ reason }, count);
    },
  });
}
