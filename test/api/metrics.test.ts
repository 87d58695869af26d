// Goal: /metrics answers operators' questions with exact numbers: after a known workload the
// request latency histogram counts each request once under its route pattern and status, a
// replayed Idempotency-Key is counted as a replay, each decision's latency is counted under its
// outcome (applied, replayed, refused with its code and the scope that refused), each group of
// one decision lands in the histogram's first bucket, and the limit of a quota sits beside its
// usage; the store's pool and retried transactions, and Node's process metrics, are exported;
// `allot serve --metrics-organizations` caps the organizations with series of their own.
// Method: per engine, an app with metrics, set up through the API (gpus: quota 3 in acme,
// project api capped at 1); a scrape before and after five sequential allocation requests, and
// the differences compared with what the workload must have counted. On PostgreSQL, a
// serialization failure is provoked in a REPEATABLE READ transaction (another store commits an
// update of the row it read) so the store retries it once. The CLI flag is checked on the built
// command.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { createMetrics, type Metrics } from '../../src/controller/metrics.js';
import { postgresPoolSizeMax } from '../../src/domain/constants.js';
import { openStore } from '../../src/store/open.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { allot } from '../support/cli.js';
import { parseExposition, scrape, type Scrape } from '../support/scrape.js';
import { startAllotServe } from '../processes/controller/processes.js';
import { adminToken, send } from './harness.js';

const allocations = '/v1/organizations/:organization/projects/:project/allocations';
const postAllocations = `POST ${allocations}`;
const allocation = (id: string, committed: number) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed }] });

/** The change of one sample between two scrapes (a missing sample counts 0). */
const delta = (before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}) =>
  (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);

describe.each(engines)('metrics on %s', (engine) => {
  let test: TestLedger;
  let app: FastifyInstance;
  let metrics: Metrics;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    metrics = createMetrics(test.ledger, { organizations: 10 });
    app = await buildApp({ ledger: test.ledger, adminToken, metrics });
    const setup: [string, string, unknown][] = [
      ['PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: 0 }],
      ['PUT', '/v1/organizations/acme', {}],
      ['PUT', '/v1/organizations/acme/projects/web', {}],
      ['PUT', '/v1/organizations/acme/projects/api', {}],
      ['PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: 3 }] }],
      ['PUT', '/v1/organizations/acme/projects/api/quotas', { quotas: [{ kind: 'gpus', cap: 1 }] }],
    ];
    for (const [method, url, body] of setup) {
      const response = await send(app, { method: method as 'PUT', url, body });
      expect(response.status, `${method} ${url}: ${response.text}`).toBeLessThan(300);
    }
  });
  afterAll(async () => {
    await app?.close();
    await test?.close();
  });

  it('counts a known workload: requests by route and status, replays, decisions by outcome and scope, groups of one', async () => {
    const before = await scrape(app);
    const post = (project: string, body: unknown, headers: Record<string, string> = {}) =>
      send(app, { method: 'POST', url: `/v1/organizations/acme/projects/${project}/allocations`, body, headers });
    expect((await post('web', allocation('a', 2), { 'idempotency-key': 'first' })).status).toBe(201);
    const replay = await post('web', allocation('a', 2), { 'idempotency-key': 'first' });
    expect([replay.status, replay.headers['idempotent-replayed']]).toEqual([201, 'true']);
    const overOrganization = await post('web', allocation('b', 2));
    expect([overOrganization.status, overOrganization.json.violations.map((v: any) => v.scope)]).toEqual([409, ['organization']]);
    expect((await post('api', allocation('c', 1))).status).toBe(201);
    const overCap = await post('api', allocation('d', 1));
    expect([overCap.status, overCap.json.violations[0].scope]).toEqual([409, 'project']);
    expect((await send(app, { method: 'GET', url: '/v1/organizations/acme/quotas' })).status).toBe(200);
    expect((await send(app, { method: 'GET', url: '/v1/no-such-route' })).status).toBe(404);
    const after = await scrape(app);
    const change = (name: string, labels: Record<string, string> = {}) => delta(before, after, name, labels);

    // Requests: by route pattern (never the URL) and status; the buckets are cumulative, and
    // no request of this test takes 10 s, so the top finite bucket holds them all.
    const latency = 'allot_http_request_duration_seconds';
    for (const [route, status, count] of [
      [postAllocations, '201', 3],
      [postAllocations, '409', 2],
      ['GET /v1/organizations/:organization/quotas', '200', 1],
      ['unmatched', '404', 1],
    ] as const) {
      expect(change(`${latency}_count`, { route, status }), `${route} ${status}`).toBe(count);
      expect(change(`${latency}_bucket`, { route, status, le: '+Inf' })).toBe(count);
      expect(change(`${latency}_bucket`, { route, status, le: '10' })).toBe(count);
      const buckets = after.all(`${latency}_bucket`).filter((s) => s.labels.route === route && s.labels.status === status);
      expect(buckets.map((s) => s.value)).toEqual([...buckets.map((s) => s.value)].sort((a, b) => a - b));
    }
    expect(after.all(`${latency}_count`).some((s) => s.labels.route!.includes('/acme'))).toBe(false);
    expect(change('allot_http_idempotent_replays_total', { route: postAllocations })).toBe(1);
    expect(change('allot_http_mutations_total', { route: postAllocations, status: '201' })).toBe(3);
    expect(change('allot_http_mutations_total', { route: postAllocations, status: '409' })).toBe(2);
    expect(change('allot_denials_total', { route: postAllocations })).toBe(2);

    // Decisions: one per request that reached the group commit, the replay included.
    const decisions = (outcome: string, code = '', scope = '') => change('allot_decision_seconds_count', { outcome, code, scope });
    expect(decisions('applied')).toBe(2);
    expect(decisions('replayed')).toBe(1);
    expect(decisions('refused', 'quota-exceeded', 'organization')).toBe(1);
    expect(decisions('refused', 'quota-exceeded', 'project')).toBe(1);
    expect(change('allot_decision_seconds_bucket', { outcome: 'applied', code: '', scope: '', le: '+Inf' })).toBe(2);
    const operations = (outcome: string, code = '', scope = '') => change('allot_operations_total', { outcome, code, scope });
    expect([operations('applied'), operations('refused', 'quota-exceeded', 'organization'), operations('refused', 'quota-exceeded', 'project')]).toEqual([2, 1, 1]);

    // Sequential requests: five groups of one decision each.
    expect(change('allot_group_decisions_count')).toBe(5);
    expect(change('allot_group_decisions_bucket', { le: '1' })).toBe(5);
    expect(change('allot_group_decisions_bucket', { le: '2048' })).toBe(5);
    expect(change('allot_group_operations_total')).toBe(5);

    // The quota's limit beside its usage: utilization is one division.
    expect(after.value('allot_quota_used', { organization: 'acme', kind: 'gpus' })).toBe(3);
    expect(after.value('allot_quota_limit', { organization: 'acme', kind: 'gpus' })).toBe(3);
    expect(after.value('allot_metrics_other_organizations')).toBe(0);
  });

  it("exports the store's connections and Node's process metrics", async () => {
    const now = await scrape(app);
    if (engine === 'postgres') {
      expect(now.value('allot_db_pool_max')).toBe(postgresPoolSizeMax);
      expect(now.value('allot_db_pool_total')).toBeGreaterThanOrEqual(1);
      expect(now.value('allot_db_pool_idle')).toBeLessThanOrEqual(now.value('allot_db_pool_total')!);
    } else {
      // One connection; the scrape's own reads are queued on it as it is measured.
      expect([now.value('allot_db_pool_max'), now.value('allot_db_pool_total')]).toEqual([1, 1]);
    }
    expect(now.value('allot_db_pool_waiting')).toBeGreaterThanOrEqual(0);
    expect(now.families.get('allot_db_transaction_retries_total')).toBe('counter');
    for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'process_cpu_user_seconds_total']) {
      expect(now.value(name), name).toBeGreaterThanOrEqual(0);
    }
    expect(now.families.get('nodejs_gc_duration_seconds')).toBe('histogram');
  });

  if (engine === 'postgres') {
    it('counts a transaction retried after a serialization failure, by reason', async () => {
      const store = test.ledger.store;
      await store.transaction((tx) => tx.run('CREATE TABLE retry_probe (id INT PRIMARY KEY, x INT NOT NULL)'));
      await store.transaction((tx) => tx.run('INSERT INTO retry_probe VALUES (1, 0)'));
      const other = openStore(test.database.url);
      let attempts = 0;
      try {
        await store.transaction(
          async (tx) => {
            attempts += 1;
            await tx.get('SELECT x FROM retry_probe WHERE id = 1');
            // The first attempt's snapshot is taken; another store commits a change to the row.
            if (attempts === 1) await other.transaction((otx) => otx.run('UPDATE retry_probe SET x = x + 1 WHERE id = 1'));
            await tx.run('UPDATE retry_probe SET x = x + 10 WHERE id = 1');
          },
          { snapshot: true },
        );
      } finally {
        await other.close();
      }
      expect(attempts).toBe(2);
      const now = await scrape(app);
      expect(now.value('allot_db_transaction_retries_total', { reason: 'serialization-failure' })).toBe(1);
      expect(now.value('allot_db_transaction_retries_total', { reason: 'deadlock' })).toBeUndefined();
    });
  }
});

describe('allot serve --metrics-organizations', () => {
  it('keeps that many organizations in series of their own and sums the rest into "_other"', async () => {
    const test = await openTestLedger('sqlite');
    await test.ledger.putKind('gpus', { displayName: 'GPUs' });
    // busy is full (2 of 2); calm uses 3 of 10, idle 1 of 10.
    for (const [organization, quantity, used] of [['busy', 2, 2], ['idle', 10, 1], ['calm', 10, 3]] as const) {
      await test.ledger.putOrganization(organization, {});
      await test.ledger.putProject(organization, 'p', {});
      await test.ledger.setQuotas(organization, [{ kind: 'gpus', quantity }]);
      await test.ledger.createAllocation(organization, 'p', allocation('x', used));
    }
    await test.ledger.close();
    const refused = await allot('serve', '--db', test.database.url, '--metrics-organizations', 'many');
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('must be a whole number from 0 to 100000')]);
    const server = await startAllotServe(test.database.url, adminToken, ['--metrics-organizations', '1']);
    try {
      const response = await fetch(`${server.ready}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
      expect(response.status).toBe(200);
      const now = parseExposition(await response.text());
      expect(now.all('allot_quota_used').map((s) => [s.labels.organization, s.value])).toEqual([
        ['busy', 2],
        ['_other', 4],
      ]);
      expect(now.all('allot_quota_limit').map((s) => [s.labels.organization, s.value])).toEqual([
        ['busy', 2],
        ['_other', 20],
      ]);
      expect(now.value('allot_metrics_other_organizations')).toBe(2);
    } finally {
      await server.stop();
      await test.database.drop();
    }
  });
});
