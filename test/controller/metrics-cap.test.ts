// Goal: the quota and limit series of /metrics stay bounded however many organizations there
// are: with 10,000 organizations only the `cap` most utilized keep series of their own, the
// others are summed per kind (per service, resource type and region for limits) under
// organization="_other", and the sums are exact, so fleet totals and utilization stay one
// query away. The choice of the kept organizations is checked on its own (ties, unlimited
// quotas, a zero limit in use).
// Method: per engine, 10,000 organizations written straight into the books in one transaction
// (organizations, a project each, counters of two kinds, a limit each: the ledger's own paths
// would take minutes), organization k using k of 10,000 GPUs (so the top 100 are k = 9,900 …
// 9,999) and 1 disk of an unlimited kind, and a limit of 10 with usage 1. One scrape is
// parsed and its series counted and summed. seriesOf is also run on small hand-made rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/controller/metrics.js';
import { otherLabel, seriesOf, topOrganizations, type LimitRow, type QuotaRow } from '../../src/controller/quota-series.js';
import { metricsOrganizationsDefault } from '../../src/domain/constants.js';
import type { JsonColumn } from '../../src/store/store.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { parseExposition } from '../support/scrape.js';

const organizations = 10_000;
const gpusLimit = 10_000;
const idOf = (k: number) => `org-${String(k).padStart(5, '0')}`;

describe.each(engines)('the metrics cap on %s', (engine) => {
  let test: TestLedger;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    await test.ledger.putKind('gpus', { displayName: 'GPUs' });
    await test.ledger.putKind('disks', { displayName: 'Disks' });
    const ks = Array.from({ length: organizations }, (_, k) => k);
    const text = (name: string): JsonColumn => ({ name, type: 'text' });
    const bigint = (name: string): JsonColumn => ({ name, type: 'bigint' });
    await test.ledger.store.transaction((tx) =>
      tx.write([
        {
          op: 'insert',
          table: 'organizations',
          keys: [],
          columns: [text('id'), text('display_name'), bigint('created_at'), bigint('updated_at')],
          rows: ks.map((k) => ({ id: idOf(k), display_name: idOf(k), created_at: 0, updated_at: 0 })),
        },
        {
          op: 'insert',
          table: 'projects',
          keys: [],
          columns: [text('organization_id'), text('id'), text('display_name'), bigint('created_at'), bigint('updated_at')],
          rows: ks.map((k) => ({ organization_id: idOf(k), id: 'p', display_name: 'p', created_at: 0, updated_at: 0 })),
        },
        {
          op: 'insert',
          table: 'quota_counters',
          keys: [],
          columns: [...['organization_id', 'kind'].map(text), ...['quota', 'kind_default', 'committed', 'reserved', 'held', 'updated_at'].map(bigint)],
          rows: ks.flatMap((k) => [
            { organization_id: idOf(k), kind: 'gpus', quota: gpusLimit, kind_default: null, committed: k, reserved: 0, held: 0, updated_at: 0 },
            { organization_id: idOf(k), kind: 'disks', quota: null, kind_default: null, committed: 1, reserved: 0, held: 0, updated_at: 0 },
          ]),
        },
        {
          op: 'insert',
          table: 'limits',
          keys: [],
          columns: [
            ...['organization_id', 'project_id', 'service', 'resource_type', 'region', 'updated_by'].map(text),
            ...['configured', 'usage', 'created_at', 'updated_at'].map(bigint),
          ],
          rows: ks.map((k) => ({
            organization_id: idOf(k),
            project_id: 'p',
            service: 'compute',
            resource_type: 'instances',
            region: 'eu-1',
            updated_by: 'test',
            configured: 10,
            usage: 1,
            created_at: 0,
            updated_at: 0,
          })),
        },
      ]),
    );
  });
  afterAll(async () => {
    await test?.close();
  });

  it(`10,000 organizations: ${metricsOrganizationsDefault} keep their series, the rest are summed into "_other"`, async () => {
    const metrics = createMetrics(test.ledger, { processMetrics: false });
    const now = parseExposition(await metrics.registry.metrics());
    const cap = metricsOrganizationsDefault;
    const kept = Array.from({ length: cap }, (_, i) => idOf(organizations - cap + i));

    const used = now.all('allot_quota_used');
    expect(used.length).toBe(cap * 2 + 2);
    expect(new Set(used.map((s) => s.labels.organization))).toEqual(new Set([...kept, otherLabel]));
    expect(now.value('allot_quota_used', { organization: idOf(9_999), kind: 'gpus' })).toBe(9_999);
    expect(now.value('allot_quota_limit', { organization: idOf(9_999), kind: 'gpus' })).toBe(gpusLimit);
    const others = organizations - cap;
    // Organizations 0 … 9,899 use k GPUs each: their sum, and the sum of their limits.
    expect(now.value('allot_quota_used', { organization: otherLabel, kind: 'gpus' })).toBe(((others - 1) * others) / 2);
    expect(now.value('allot_quota_limit', { organization: otherLabel, kind: 'gpus' })).toBe(others * gpusLimit);
    // Disks are unlimited: usage summed, no limit series at all.
    expect(now.value('allot_quota_used', { organization: otherLabel, kind: 'disks' })).toBe(others);
    expect(now.all('allot_quota_limit').length).toBe(cap + 1);
    expect(now.all('allot_quota_limit').some((s) => s.labels.kind === 'disks')).toBe(false);

    for (const [name, perOrganization] of [['allot_limit_usage', 1], ['allot_limit_active', 10]] as const) {
      expect(now.all(name).length).toBe(cap + 1);
      expect(now.value(name, { organization: idOf(9_950), project: 'p' })).toBe(perOrganization);
      expect(now.value(name, { organization: otherLabel, project: otherLabel, service: 'compute', resource_type: 'instances', region: 'eu-1' })).toBe(
        others * perOrganization,
      );
    }
    expect(now.value('allot_metrics_other_organizations')).toBe(others);
    // The whole scrape: bounded by the cap, not by the books.
    expect(now.samples.length).toBeLessThan(1_000);
  });

  it('a cap of 0 sums every organization; a cap above the count keeps them all', async () => {
    const none = parseExposition(await createMetrics(test.ledger, { organizations: 0, processMetrics: false }).registry.metrics());
    expect(none.all('allot_quota_used').map((s) => s.labels.organization)).toEqual([otherLabel, otherLabel]);
    expect(none.value('allot_quota_used', { kind: 'gpus' })).toBe(((organizations - 1) * organizations) / 2);
    const all = parseExposition(await createMetrics(test.ledger, { organizations: 20_000, processMetrics: false }).registry.metrics());
    expect(all.all('allot_quota_used').length).toBe(organizations * 2);
    expect(all.value('allot_metrics_other_organizations')).toBe(0);
  });
});

describe('which organizations keep their series', () => {
  const quota = (organization: string, kind: string, used: number, limit: number | null): QuotaRow => ({ organization, kind, used, limit });
  const limit = (organization: string, usage: number, configured: number): LimitRow => ({
    organization,
    project: 'p',
    service: 's',
    resourceType: 'r',
    region: 'eu-1',
    configured,
    usage,
  });

  it('the highest utilization of any quota or limit ranks an organization; ties go by id', () => {
    const quotas = [
      quota('half', 'gpus', 5, 10),
      quota('zero-in-use', 'gpus', 1, 0), // over a limit of 0: ranks first
      quota('unlimited', 'gpus', 1_000_000, null), // never full
      quota('b-tie', 'gpus', 1, 10),
      quota('a-tie', 'gpus', 2, 20),
      quota('limited', 'gpus', 0, 10),
    ];
    const limits = [limit('limited', 9, 10)];
    expect([...topOrganizations(quotas, limits, 3)].sort()).toEqual(['half', 'limited', 'zero-in-use']);
    expect([...topOrganizations(quotas, limits, 4)].sort()).toEqual(['a-tie', 'half', 'limited', 'zero-in-use']);
    expect(topOrganizations(quotas, limits, 100).size).toBe(6);
  });

  it('sums what is not kept: usage of every quota, limits only where finite; limits by service, type and region', () => {
    const quotas = [quota('top', 'gpus', 9, 10), quota('x', 'gpus', 1, 10), quota('y', 'gpus', 2, null), quota('y', 'ram', 3, 8)];
    // y reports twice its configured limit in eu-1: it ranks first, above top's 90 %.
    const limits = [limit('x', 1, 4), limit('y', 2, 1), { ...limit('y', 5, 5), region: 'us-1' }];
    const series = seriesOf(quotas, limits, 1);
    expect(series.quotas).toEqual([
      { labels: { organization: 'y', kind: 'gpus' }, used: 2, limit: null },
      { labels: { organization: 'y', kind: 'ram' }, used: 3, limit: 8 },
      { labels: { organization: otherLabel, kind: 'gpus' }, used: 10, limit: 20 },
    ]);
    const place = { service: 's', resource_type: 'r' };
    expect(series.limits).toEqual([
      { labels: { organization: 'y', project: 'p', ...place, region: 'eu-1' }, usage: 2, active: 2 },
      { labels: { organization: 'y', project: 'p', ...place, region: 'us-1' }, usage: 5, active: 5 },
      { labels: { organization: otherLabel, project: otherLabel, ...place, region: 'eu-1' }, usage: 1, active: 4 },
    ]);
    expect(series.otherOrganizations).toBe(2);
  });
});
