// Goal: the plan in docs/scaling.md holds in the code: on Citus, with the per-organization
// tables distributed by organization_id, every statement of the ledger's own work on them
// names one organization, so it routes to one shard. A statement on a per-organization table
// that neither filters nor writes by organization_id fails this test, unless it is one of the
// few listed below, each a cross-organization operation by design, with the reason it may fan
// out (a listing, the sweeper, the checks of the whole books), or one of the known gaps the
// plan lists as changes to make before distributing (a ratchet: the list only shrinks).
// Method: PostgreSQL (Citus is PostgreSQL); a store that records every statement it runs and
// every row write, under allot's app driven through the API across every route family
// (kinds, organizations, projects, quotas and project quotas, allocations, holds with an
// expiry swept, batches, journal and watch, limits, regions and hosts, tokens, history,
// idempotent retries, recounts), then each recorded statement checked for the organization.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { openLedger, openStore, type Ledger } from '../../src/index.js';
import type { Executor, RowsWrite, Store } from '../../src/store/store.js';
import { createTestDatabase, engines, ManualClock, type TestDatabase } from '../support/engines.js';

/** The tables distributed by organization (the organizations table by its own id). */
const perOrganization = [
  'organizations',
  'projects',
  'quota_counters',
  'project_counters',
  'allocations',
  'allocation_lines',
  'journal',
  'limits',
  'global_limits',
  'project_regions',
  'compat_allocation_metadata',
  'usage_history',
  'idempotency_keys',
];

/** Statements that span organizations on purpose, and why that is fine on Citus. */
const crossOrganization: { pattern: RegExp; why: string }[] = [
  { pattern: /FROM organizations\b(?![^]*\bWHERE\b[^]*\bid\s*(=|IN|= ANY))/i, why: 'listing organizations pages through all of them (a fan-out read of one small table)' },
  { pattern: /allocations_expiry|expires_at <= \?[^]*ORDER BY expires_at/i, why: 'the sweeper finds expired holds across organizations, then resolves each in its own organization’s decision' },
  { pattern: /^\s*SELECT[^]*FROM (quota_counters|project_counters|allocations|allocation_lines)\b[^]*GROUP BY/i, why: 'allot verify recounts the whole books (an operator’s fan-out read)' },
  { pattern: /FROM usage_history WHERE resolution = '(raw|hour)'( AND at < \?)?\s*$/i, why: 'the controller’s roll-up and retention run over the whole history once a pass, off the decision path' },
];

/**
 * What must change before the tables are distributed (docs/scaling.md, "Before distributing").
 * A ratchet: a statement matching none of these fails the test, and an entry that matches
 * nothing any more (fixed) must be removed.
 */
const gaps: { pattern: RegExp; change: string }[] = [
  { pattern: /idempotency_keys/, change: 'idempotency_keys gains organization_id (the decision’s), so a stored answer is written on its shard' },
];

interface Recorded {
  sql: string;
  write?: RowsWrite;
}

function recording(store: Store, log: Recorded[]): Store {
  const wrap = (tx: Executor): Executor => ({
    all: (sql, params) => (log.push({ sql }), tx.all(sql, params)),
    get: (sql, params) => (log.push({ sql }), tx.get(sql, params)),
    run: (sql, params) => (log.push({ sql }), tx.run(sql, params)),
    selectMany: (queries) => {
      for (const query of queries) log.push({ sql: query.sql });
      return tx.selectMany(queries);
    },
    write: (writes) => {
      for (const write of writes) if (write.rows.length > 0) log.push({ sql: `${write.op} ${write.table}`, write });
      return tx.write(writes);
    },
  });
  const recorded = Object.create(store) as Store;
  recorded.transaction = (work, options) => store.transaction((tx) => work(wrap(tx)), options);
  return recorded;
}

const tablesOf = (sql: string) =>
  [...sql.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE)\s+([a-z_]+)/gi)].map((match) => match[1]!.toLowerCase());

/** Whether a statement names its organization (or is a write whose rows carry it). */
function namesOrganization({ sql, write }: Recorded): boolean {
  if (write) {
    // An insert routes by the rows it writes; an update or a delete by the keys it matches.
    const column = write.table === 'organizations' ? 'id' : 'organization_id';
    return write.op === 'insert' ? write.columns.some((c) => c.name === column) : write.keys.includes(column);
  }
  if (/^\s*INSERT INTO organizations\s*\(\s*id\b/i.test(sql)) return true;
  if (tablesOf(sql).every((table) => table === 'organizations')) return /\bid\s*(=|IN\b|= ANY)|organization_id/i.test(sql);
  return /organization_id/i.test(sql);
}

describe.skipIf(!engines.includes('postgres'))('statements route to one organization (docs/scaling.md)', () => {
  const log: Recorded[] = [];
  let database: TestDatabase;
  let ledger: Ledger;
  let app: FastifyInstance;
  const clock = new ManualClock(Date.now());
  const adminToken = 'shard-routing-admin-token-for-tests';

  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = {}) => {
    const response = await app.inject({ method, url, headers: { authorization: `Bearer ${adminToken}`, ...headers }, ...(payload ? { payload } : {}) });
    expect(response.statusCode, `${method} ${url}: ${response.body}`).toBeLessThan(300);
    return response.body ? response.json() : undefined;
  };

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    ledger = await openLedger({ db: recording(openStore(database.url), log), clock });
    app = await buildApp({ ledger, adminToken });
    log.length = 0; // The migrations are the coordinator's.
  });
  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await database?.drop();
  });

  it('filters or writes every statement on a per-organization table by organization_id', async () => {
    const org = '/v1/organizations/acme';
    const web = `${org}/projects/web`;
    await call('PUT', '/v1/resource-kinds/gpu', { displayName: 'GPUs', default: 0 });
    await call('GET', '/v1/resource-kinds');
    for (const id of ['acme', 'beta']) await call('PUT', `/v1/organizations/${id}`, {});
    await call('GET', org);
    await call('PUT', `${org}/quotas`, { quotas: [{ kind: 'gpu', quantity: 100 }] });
    await call('GET', `${org}/quotas`);
    await call('PUT', web, {});
    await call('PUT', `${org}/projects/batch`, {});
    await call('GET', `${org}/projects`);
    await call('PUT', `${web}/quotas`, { quotas: [{ kind: 'gpu', cap: 50, guaranteed: 5 }] });
    await call('GET', `${web}/quotas`);
    const made = await call('POST', `${web}/allocations`, { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpu', committed: 2 }] }, { 'idempotency-key': 'k1' });
    await call('POST', `${web}/allocations`, { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpu', committed: 2 }] }, { 'idempotency-key': 'k1' });
    await call('GET', `${web}/allocations/${made.id}`);
    await call('PUT', `${web}/allocations/${made.id}`, { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpu', committed: 3 }] });
    await call('GET', `${web}/allocations`);
    await call('GET', `${org}/allocations?resourceKind=vm&resourceId=vm-1`);
    const hold = await call('POST', `${web}/holds`, { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'gpu', committed: 1 }], ttlSeconds: 60 });
    await call('POST', `${web}/holds/${hold.id}/confirm`, {});
    const released = await call('POST', `${web}/holds`, { resource: { kind: 'vm', id: 'vm-3' }, allocations: [{ kind: 'gpu', committed: 1 }], ttlSeconds: 60 });
    await call('POST', `${web}/holds/${released.id}/release`, {});
    await call('POST', `${web}/holds`, { resource: { kind: 'vm', id: 'vm-4' }, allocations: [{ kind: 'gpu', committed: 1 }], ttlSeconds: 1 });
    clock.advance(5_000);
    await ledger.sweepExpiredHolds();
    await call('GET', `${web}/holds`);
    await call('POST', `${org}/batch`, {
      mode: 'atomic',
      operations: [{ op: 'allocation.create', project: 'batch', body: { resource: { kind: 'vm', id: 'vm-5' }, allocations: [{ kind: 'gpu', committed: 1 }] } }],
    });
    // The identity-service API keeps its allocations' metadata beside them.
    // (Its organizations and projects are named by UUIDs.)
    const [tenant, project] = [randomUUID(), randomUUID()];
    await call('PUT', `/v1/organizations/${tenant}`, {});
    await call('PUT', `/v1/organizations/${tenant}/quotas`, { quotas: [{ kind: 'gpu', quantity: 10 }] });
    await call('PUT', `/v1/organizations/${tenant}/projects/${project}`, {});
    const compatPath = `/api/v1/organizations/${tenant}/projects/${project}/allocations`;
    const compat = await call('POST', compatPath, {
      metadata: { name: 'compat-vm' },
      spec: { kind: 'vm', id: 'vm-compat', allocations: [{ kind: 'gpu', committed: 1, reserved: 0 }] },
    });
    await call('GET', `${compatPath}/${compat.metadata.id}`);
    await call('DELETE', `${web}/allocations/${made.id}`);
    await call('GET', `${org}/journal?after=0`);
    await call('GET', `${org}/journal?tail=5`);
    await call('PUT', '/v1/regions/eu-1', {});
    await call('GET', '/v1/regions');
    await call('PUT', '/v1/regions/eu-1/hosts/compute', { endpoint: 'http://127.0.0.1:9/', token: 'host-token' });
    await call('PUT', `${web}/regions`, { primary: 'eu-1', enabled: ['eu-1'] });
    await call('PUT', `${web}/limits/compute/instances`, { regions: [{ region: 'eu-1', limit: 5 }] });
    await call('PUT', `${web}/limits/compute/instances/regions/eu-1/usage`, { usage: 2 });
    await call('GET', `${web}/limits`);
    await call('GET', `${org}/limits`);
    await ledger.sampleUsage(60_000);
    await call('GET', `${org}/history?kind=gpu`);
    const token = await call('POST', '/v1/tokens', { role: 'reader', organization: 'acme' });
    await call('GET', '/v1/tokens');
    await call('DELETE', `/v1/tokens/${token.id}`);
    await call('DELETE', `${org}/projects/batch?cascade=true`);
    await call('GET', '/v1/organizations');

    const offenders = log
      .filter((entry) => (entry.write ? [entry.write.table] : tablesOf(entry.sql)).some((table) => perOrganization.includes(table)))
      .filter((entry) => !namesOrganization(entry))
      .filter((entry) => !crossOrganization.some(({ pattern }) => pattern.test(entry.sql)))
      .map((entry) => entry.sql.replace(/\s+/g, ' ').slice(0, 300));
    const distinct = [...new Set(offenders)];
    expect(distinct.filter((sql) => !gaps.some(({ pattern }) => pattern.test(sql)))).toEqual([]);
    expect(gaps.filter(({ pattern }) => !distinct.some((sql) => pattern.test(sql))).map(({ change }) => `done, remove from the list: ${change}`)).toEqual([]);
    // The workload reached every per-organization table it should.
    const touched = new Set(log.flatMap((entry) => (entry.write ? [entry.write.table] : tablesOf(entry.sql))));
    expect(perOrganization.filter((table) => !touched.has(table))).toEqual([]);
  });
});
