/**
 * Prometheus metrics (prom-client), served at /metrics: the controller's passes, reconcile
 * time and sync lag; the API's decisions and denials; the group commit's sizes, times, retries
 * and queue; and, read from the ledger at each scrape,
 * every organization's quota usage and every limit's usage and active limit, and the hosts'
 * reachability.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Ledger } from '../ledger/ledger.js';

export interface ControllerMetrics {
  passes: Counter<'region' | 'outcome'>;
  /** Trackers a recount in their host found drifted from the host's rows (and fixed). */
  drift: Counter<'region' | 'service'>;
  reconcileSeconds: Histogram<string>;
  /** From a tracker's last change to its usage reaching the limit. */
  syncLag: Histogram<string>;
}

export interface Metrics {
  registry: Registry;
  controller: ControllerMetrics;
  /** Mutating API requests, by route and status. */
  decisions: Counter<'route' | 'status'>;
  /** Requests refused by a quota, cap or guarantee, by route. */
  denials: Counter<'route'>;
}

export function createMetrics(ledger: Ledger): Metrics {
  const registry = new Registry();
  const controller: ControllerMetrics = {
    passes: new Counter({ name: 'allot_controller_passes_total', help: 'Reconcile passes, by outcome', labelNames: ['region', 'outcome'], registers: [registry] }),
    drift: new Counter({
      name: 'allot_drift_found_total',
      help: "Trackers whose host's recount found them drifted from the host's rows (then fixed)",
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
  const decisions = new Counter({
    name: 'allot_http_mutations_total',
    help: 'Mutating API requests, by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  const denials = new Counter({
    name: 'allot_denials_total',
    help: 'Requests refused by a quota, cap or guarantee (quota-exceeded), by route',
    labelNames: ['route'],
    registers: [registry],
  });

  new Gauge({
    name: 'allot_quota_used',
    help: "An organization's usage of a kind (committed + reserved + held)",
    labelNames: ['organization', 'kind'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await ledger.usageOfEveryQuota()) this.set({ organization: row.organization, kind: row.kind }, row.used);
    },
  });
  // Both limit gauges from one read per scrape: prom-client collects the metrics of a scrape
  // concurrently, so the second collect joins the read the first one started.
  type LimitRow = Awaited<ReturnType<Ledger['everyLimitRegion']>>[number];
  let reading: Promise<LimitRow[]> | undefined;
  const limitRows = () => {
    reading ??= ledger
      .everyLimitRegion()
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  const limitLabels = ['organization', 'project', 'service', 'resource_type', 'region'] as const;
  const labelsOf = (row: LimitRow) => ({
    organization: row.organization,
    project: row.project,
    service: row.service,
    resource_type: row.resourceType,
    region: row.region,
  });
  new Gauge({
    name: 'allot_limit_usage',
    help: "A limit's usage as its region last reported it",
    labelNames: limitLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await limitRows()) this.set(labelsOf(row), row.usage);
    },
  });
  new Gauge({
    name: 'allot_limit_active',
    help: "A limit's active value: max(configured, usage)",
    labelNames: limitLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await limitRows()) this.set(labelsOf(row), Math.max(row.configured, row.usage));
    },
  });
  new Gauge({
    name: 'allot_region_host_up',
    help: '1 when the controller reached the host lately, 0 when it is stale or never reached',
    labelNames: ['region', 'service'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const host of await ledger.everyHostStatus()) {
        this.set({ region: host.region, service: host.service }, host.status === 'ok' ? 1 : 0);
      }
    },
  });
  // The group commit: how many decisions share a commit, how long a group takes, how often a
  // group runs again (a race learned at write time) or splits (a row the database refused).
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
  return { registry, controller, decisions, denials };
}
