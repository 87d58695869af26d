// Goal: the Grafana dashboard shipped in deploy/grafana/allot.json graphs only metrics the
// server exports (a renamed metric fails here, not on an operator's screen), covers what
// operators ask (latency by route, decisions and denials by scope, utilization, group sizes,
// event loop lag, the database pool, retries, replays, the limits controller's drifts and lag), and is a dashboard Grafana imports.
// Method: per engine, a real app with metrics is scraped (GET /metrics) and the metric families
// it declares are expanded to the names their samples take (a histogram's _bucket, _sum and
// _count). Every PromQL expression of the dashboard (panel targets and template variable
// queries) is reduced to its metric names: strings, label matchers, ranges, grouping clauses
// and Grafana variables are removed, and what is left that is not a function or a keyword is a
// metric name, which must be one the server exports.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { createMetrics } from '../../src/controller/metrics.js';
import { webhookMetrics } from '../../src/webhooks/metrics.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { sampleNamesOf, scrape } from '../support/scrape.js';
import { adminToken } from './harness.js';

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/allot.json', import.meta.url), 'utf8'));

const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads. */
export function metricNamesOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names: string[] = [];
  for (const match of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (match[2] !== undefined || keywords.has(match[1]!.toLowerCase())) continue;
    names.push(match[1]!);
  }
  return names;
}

interface Query {
  where: string;
  expr: string;
}

/** Every PromQL expression of the dashboard: panel targets, and template variables' metrics. */
function queriesOf(board: any): Query[] {
  const queries: Query[] = [];
  for (const panel of board.panels) {
    for (const target of panel.targets ?? []) queries.push({ where: `${panel.title} (${target.refId})`, expr: target.expr });
  }
  for (const variable of board.templating.list) {
    if (variable.type !== 'query') continue;
    const text: string = typeof variable.query === 'string' ? variable.query : variable.query.query;
    const labelValues = /^label_values\((.*),\s*\w+\)$/.exec(text);
    queries.push({ where: `variable ${variable.name}`, expr: labelValues ? labelValues[1]! : text });
  }
  return queries;
}

describe('metricNamesOf', () => {
  it('finds the metric names of an expression and nothing else', () => {
    expect(metricNamesOf('histogram_quantile(0.99, sum by (le, route) (rate(allot_x_bucket{a="b{c}", d=~"$v"}[$__rate_interval])))')).toEqual(['allot_x_bucket']);
    expect(metricNamesOf('topk($top, max by (o) (a_used) / on (o) group_left max without (p) (b_limit)) > bool 0.5 or c')).toEqual(['a_used', 'b_limit', 'c']);
    expect(metricNamesOf('sum(rate(x_total[5m] offset 1h))')).toEqual(['x_total']);
  });
});

describe('deploy/grafana/allot.json', () => {
  it('is a Grafana dashboard: unique panel ids, a grid position each, targets with ref ids on the chosen data source', () => {
    expect(dashboard).toMatchObject({ title: 'allot', uid: 'allot', schemaVersion: expect.any(Number) });
    const ids = dashboard.panels.map((panel: any) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos, panel.title).toMatchObject({ x: expect.any(Number), y: expect.any(Number), w: expect.any(Number), h: expect.any(Number) });
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
      if (panel.type === 'row') continue;
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      expect(new Set(panel.targets.map((t: any) => t.refId)).size, panel.title).toBe(panel.targets.length);
    }
    expect(dashboard.templating.list.map((v: any) => v.name)).toEqual(['datasource', 'kind', 'top']);
  });

  it('graphs what operators ask for', () => {
    const read = new Set(queriesOf(dashboard).flatMap(({ expr }) => metricNamesOf(expr)));
    for (const name of [
      'allot_http_request_duration_seconds_bucket',
      'allot_http_idempotent_replays_total',
      'allot_decision_seconds_count',
      'allot_operations_total',
      'allot_quota_used',
      'allot_quota_limit',
      'allot_group_decisions_bucket',
      'nodejs_eventloop_lag_p99_seconds',
      'allot_db_pool_waiting',
      'allot_db_transaction_retries_total',
      'allot_replica_reads_total',
      'allot_webhook_deliveries_total',
      'allot_webhook_subscriptions_failing',
      'allot_drift_found_total',
      'allot_limit_sync_lag_seconds_bucket',
    ]) {
      expect(read.has(name), name).toBe(true);
    }
  });
});

describe.each(engines)('the dashboard against /metrics on %s', (engine) => {
  let test: TestLedger;
  let app: FastifyInstance;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    // As `allot serve` does: the webhooks' series join the server's.
    const metrics = createMetrics(test.ledger);
    webhookMetrics(metrics.registry, test.ledger);
    app = await buildApp({ ledger: test.ledger, adminToken, metrics });
  });
  afterAll(async () => {
    await app?.close();
    await test?.close();
  });

  it('every metric name the dashboard queries is one the server exports', async () => {
    const { families } = await scrape(app);
    const exported = new Set([...families].flatMap(([family, type]) => sampleNamesOf(family, type)));
    const unknown: string[] = [];
    for (const { where, expr } of queriesOf(dashboard)) {
      const names = metricNamesOf(expr);
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) if (!exported.has(name)) unknown.push(`${where}: ${name}`);
    }
    expect(unknown).toEqual([]);
  });
});
