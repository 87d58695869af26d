/**
 * The quota and limit gauges of /metrics, with a bounded number of series. Each organization's
 * usage and limit per kind (and per limit of its projects) would be one series each: with
 * thousands of organizations a scrape grows without bound and so does the monitoring system's
 * memory, which is paid per series. So only the `cap` organizations nearest to (or over) one of
 * their quotas or limits keep series of their own; the others are summed per kind (per
 * service, resource type and region for limits) under `organization="_other"` (and
 * `project="_other"`). What an operator looks for, the organizations about to be refused, keeps
 * its detail; fleet totals (`sum by (kind)`) stay exact.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Ledger } from '../ledger/ledger.js';

/** The organization (and project) label of the summed series. Never an id: ids start with [a-z0-9]. */
export const otherLabel = '_other';

export type QuotaRow = Awaited<ReturnType<Ledger['usageOfEveryQuota']>>[number];
export type LimitRow = Awaited<ReturnType<Ledger['everyLimitRegion']>>[number];

/** How full one quota or limit is: used over limit; an unlimited one is never full. */
function utilization(used: number, limit: number | null): number {
  if (limit === null) return 0;
  if (limit === 0) return used > 0 ? Infinity : 0;
  return used / limit;
}

/**
 * The organizations that keep their own series: the `cap` with the highest utilization of any
 * of their quotas or limits, ties broken by id (so the same books give the same set).
 */
export function topOrganizations(quotas: readonly QuotaRow[], limits: readonly LimitRow[], cap: number): Set<string> {
  const peak = new Map<string, number>();
  const note = (organization: string, value: number) => peak.set(organization, Math.max(peak.get(organization) ?? 0, value));
  for (const row of quotas) note(row.organization, utilization(row.used, row.limit));
  for (const row of limits) note(row.organization, utilization(row.usage, row.configured));
  if (peak.size <= cap) return new Set(peak.keys());
  const ranked = [...peak].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  return new Set(ranked.slice(0, cap).map(([organization]) => organization));
}

export interface QuotaSeries {
  labels: { organization: string; kind: string };
  used: number;
  /** Null: unlimited (no limit series). Summed: the sum of the finite limits. */
  limit: number | null;
}

export interface LimitSeries {
  labels: { organization: string; project: string; service: string; resource_type: string; region: string };
  usage: number;
  active: number;
}

/** The series of one scrape: the kept organizations' own, the others' summed. */
export function seriesOf(quotas: readonly QuotaRow[], limits: readonly LimitRow[], cap: number) {
  const kept = topOrganizations(quotas, limits, cap);
  const quotaSeries: QuotaSeries[] = [];
  const otherQuotas = new Map<string, QuotaSeries>();
  const others = new Set<string>();
  for (const row of quotas) {
    if (kept.has(row.organization)) {
      quotaSeries.push({ labels: { organization: row.organization, kind: row.kind }, used: row.used, limit: row.limit });
      continue;
    }
    others.add(row.organization);
    let sum = otherQuotas.get(row.kind);
    if (!sum) otherQuotas.set(row.kind, (sum = { labels: { organization: otherLabel, kind: row.kind }, used: 0, limit: null }));
    sum.used += row.used;
    if (row.limit !== null) sum.limit = (sum.limit ?? 0) + row.limit;
  }
  const limitSeries: LimitSeries[] = [];
  const otherLimits = new Map<string, LimitSeries>();
  for (const row of limits) {
    const active = Math.max(row.configured, row.usage);
    const place = { service: row.service, resource_type: row.resourceType, region: row.region };
    if (kept.has(row.organization)) {
      limitSeries.push({ labels: { organization: row.organization, project: row.project, ...place }, usage: row.usage, active });
      continue;
    }
    others.add(row.organization);
    const key = JSON.stringify(place);
    let sum = otherLimits.get(key);
    if (!sum) otherLimits.set(key, (sum = { labels: { organization: otherLabel, project: otherLabel, ...place }, usage: 0, active: 0 }));
    sum.usage += row.usage;
    sum.active += active;
  }
  return {
    quotas: [...quotaSeries, ...otherQuotas.values()],
    limits: [...limitSeries, ...otherLimits.values()],
    otherOrganizations: others.size,
  };
}

/**
 * Registers allot_quota_used, allot_quota_limit, allot_limit_usage, allot_limit_active and
 * allot_metrics_other_organizations, all from one read of the books per scrape: prom-client
 * collects a scrape's metrics concurrently, so the later collects join the read the first one
 * started.
 */
export function registerQuotaSeries(registry: Registry, ledger: Ledger, cap: number): void {
  let reading: Promise<ReturnType<typeof seriesOf>> | undefined;
  const series = () => {
    reading ??= Promise.all([ledger.usageOfEveryQuota(), ledger.everyLimitRegion()])
      .then(([quotas, limits]) => seriesOf(quotas, limits, cap))
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  const gauge = (name: string, help: string, labelNames: readonly string[], fill: (gauge: Gauge, all: ReturnType<typeof seriesOf>) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const all = await series();
        this.reset();
        fill(this, all);
      },
    });
  const quotaLabels = ['organization', 'kind'];
  const limitLabels = ['organization', 'project', 'service', 'resource_type', 'region'];
  gauge('allot_quota_used', "An organization's usage of a kind (committed + reserved + held)", quotaLabels, (g, all) => {
    for (const row of all.quotas) g.set(row.labels, row.used);
  });
  gauge('allot_quota_limit', "An organization's limit of a kind: its quota, else the kind's default (none: unlimited)", quotaLabels, (g, all) => {
    for (const row of all.quotas) if (row.limit !== null) g.set(row.labels, row.limit);
  });
  gauge('allot_limit_usage', "A limit's usage as its region last reported it", limitLabels, (g, all) => {
    for (const row of all.limits) g.set(row.labels, row.usage);
  });
  gauge('allot_limit_active', "A limit's active value: max(configured, usage)", limitLabels, (g, all) => {
    for (const row of all.limits) g.set(row.labels, row.active);
  });
  gauge('allot_metrics_other_organizations', `Organizations whose quota and limit series are summed into organization="${otherLabel}"`, [], (g, all) => {
    g.set(all.otherOrganizations);
  });
}
