// Goal: the organization-wide reads the dashboard pages through answer exactly and page
// without loss or repetition: GET /v1/organizations filters by id prefix and, with
// include=quotas, carries each organization's quotas equal to GET …/quotas; GET
// …/allocations lists every live allocation of an organization across its projects in
// (project, id) order, filters by project and by the referenced resource, and pages through
// all of them with any page size; GET …/limits pages by project with every limit of a
// project on one page; GET /v1/whoami answers the caller's role and scope. Bad filters are
// 400 and change nothing; an unknown organization is 404.
// Method: per engine, a fresh ledger and app; organizations, projects, allocations (one
// deleted, one a pending hold, neither listed) and limits made through the ledger; every
// page walked through `app.inject` and compared with the set made.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { openLedger } from '../../src/index.js';
import { createTestDatabase, engines, postgresUrl } from '../support/engines.js';
import { adminToken, closeApi, expectProblem, openApi, send, type ApiHarness } from './harness.js';

const get = async (api: ApiHarness, url: string) => send(api.app, { method: 'GET', url });

/** Every item of a paged listing; `perItem` false when `limit` counts something else (projects). */
async function walk(api: ApiHarness, url: string, limit: number, perItem = true): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages += 1) {
    const separator = url.includes('?') ? '&' : '?';
    const response = await get(api, `${url}${separator}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(response.status, response.text).toBe(200);
    if (perItem) expect(response.json.items.length).toBeLessThanOrEqual(limit);
    items.push(...response.json.items);
    cursor = response.json.nextCursor;
    if (cursor === null) return items;
  }
  throw new Error('paging did not end');
}

describe.each(engines)('organization-wide views on %s', (engine) => {
  let api: ApiHarness;
  /** `project/id` of every live allocation of acme. */
  const live: string[] = [];

  beforeAll(async () => {
    api = await openApi(engine);
    const { ledger } = api.test;
    await ledger.putKind('gpu', { displayName: 'GPUs', default: 1000 });
    for (const organization of ['acme', 'acme-labs', 'beta', 'zeta']) await ledger.putOrganization(organization, {});
    for (const project of ['web', 'api', 'batch']) await ledger.putProject('acme', project, {});
    await ledger.putProject('beta', 'web', {});
    for (let index = 0; index < 23; index += 1) {
      const project = ['web', 'api', 'batch'][index % 3]!;
      const made = await ledger.createAllocation('acme', project, {
        resource: { kind: index % 2 === 0 ? 'vm' : 'disk', id: `r-${index}` },
        allocations: [{ kind: 'gpu', committed: 1 }],
      });
      live.push(`${project}/${made.id}`);
    }
    const gone = await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'gone' }, allocations: [{ kind: 'gpu', committed: 1 }] });
    await ledger.deleteAllocation('acme', 'web', gone.id);
    await ledger.createHold('acme', 'api', { resource: { kind: 'vm', id: 'held' }, allocations: [{ kind: 'gpu', committed: 2 }], ttlSeconds: 600 });
    await ledger.createAllocation('beta', 'web', { resource: { kind: 'vm', id: 'r-0' }, allocations: [{ kind: 'gpu', committed: 5 }] });
    for (const project of ['web', 'batch']) {
      await ledger.setLimit('acme', project, 'compute', 'instances', [{ region: 'eu-1', limit: 5 }, { region: 'us-1', limit: 7 }]);
      await ledger.setLimit('acme', project, 'storage', 'volumes', [{ region: 'eu-1', limit: 3 }]);
    }
  });
  afterAll(async () => closeApi(api));

  it('lists organizations by id prefix, and with their quotas when asked', async () => {
    const ids = async (query: string) => (await get(api, `/v1/organizations${query}`)).json.items.map((o: { id: string }) => o.id);
    expect(await ids('?prefix=acme')).toEqual(['acme', 'acme-labs']);
    expect(await ids('?prefix=acme-')).toEqual(['acme-labs']);
    expect(await ids('?prefix=z')).toEqual(['zeta']);
    expect(await ids('?prefix=q')).toEqual([]);
    expect((await walk(api, '/v1/organizations?prefix=a', 1)).map((o) => o.id)).toEqual(['acme', 'acme-labs']);

    const plain = await get(api, '/v1/organizations');
    expect(plain.json.items[0].quotas).toBeUndefined();
    const withQuotas = await get(api, '/v1/organizations?include=quotas&limit=2');
    expect(withQuotas.json.items.map((o: { id: string }) => o.id)).toEqual(['acme', 'acme-labs']);
    expect(withQuotas.json.items[0].quotas).toEqual((await get(api, '/v1/organizations/acme/quotas')).json.quotas);
    expect(withQuotas.json.items[0].quotas[0]).toMatchObject({ kind: 'gpu', committed: 23, held: 2, quantity: 1000 });
    expect(withQuotas.json.items[1].quotas[0]).toMatchObject({ kind: 'gpu', committed: 0, used: 0 });
    // The default page (100) and up to 100 carry their quotas; more would be refused.
    expect((await get(api, '/v1/organizations?include=quotas')).status).toBe(200);
    expect((await get(api, '/v1/organizations?include=quotas&limit=100')).status).toBe(200);
  });

  it('matches the prefix whatever the database collation (PostgreSQL in en-US, not bytes)', async () => {
    // A database of its own: its organizations' ids collate in en-US (ICU) on PostgreSQL, which
    // orders '-' and digits unlike bytes, so a byte-order range would miss ids here.
    const database = await createTestDatabase(engine);
    const seeding = await openLedger({ db: database.url });
    for (const organization of ['acme', 'acme-labs', 'acme2', 'acmez', 'beta']) await seeding.putOrganization(organization, {});
    await seeding.close();
    if (engine === 'postgres') {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        const schema = new URL(database.url).searchParams.get('schema')!;
        await client.query(`ALTER TABLE ${schema}.organizations ALTER COLUMN id TYPE text COLLATE "en-US-x-icu"`);
      } finally {
        await client.end();
      }
    }
    const ledger = await openLedger({ db: database.url });
    const collated: ApiHarness = { app: await buildApp({ ledger, adminToken }), test: { ledger, database, close: async () => undefined } };
    try {
      const ids = async (query: string) => (await walk(collated, `/v1/organizations${query}`, 2)).map((o: { id: string }) => o.id).sort();
      expect(await ids('?prefix=acme')).toEqual(['acme', 'acme-labs', 'acme2', 'acmez']);
      expect(await ids('?prefix=acme-')).toEqual(['acme-labs']);
      expect(await ids('?prefix=acme2')).toEqual(['acme2']);
      expect(await ids('')).toEqual(['acme', 'acme-labs', 'acme2', 'acmez', 'beta']);
    } finally {
      await collated.app.close();
      await ledger.close();
      await database.drop();
    }
  });

  it('lists every live allocation of an organization across projects, page by page', async () => {
    const expected = [...live].sort();
    for (const limit of [1, 4, 23, 100]) {
      const items = await walk(api, '/v1/organizations/acme/allocations', limit);
      expect(items.map((a) => `${a.project}/${a.id}`)).toEqual(expected);
    }
    const batch = await walk(api, '/v1/organizations/acme/allocations?project=batch', 3);
    expect(batch.map((a) => `${a.project}/${a.id}`)).toEqual(expected.filter((key) => key.startsWith('batch/')));
    const found = await get(api, '/v1/organizations/acme/allocations?resourceKind=vm&resourceId=r-4');
    expect(found.json.items.map((a: any) => [a.project, a.resource])).toEqual([['api', { kind: 'vm', id: 'r-4' }]]);
    expect((await get(api, '/v1/organizations/acme/allocations?resourceId=held')).json.items).toEqual([]);
    expect((await get(api, '/v1/organizations/acme/allocations?resourceId=gone')).json.items).toEqual([]);
    // The per-project listing pages the same way.
    const web = await walk(api, '/v1/organizations/acme/projects/web/allocations', 2);
    expect(web.map((a) => `${a.project}/${a.id}`)).toEqual(expected.filter((key) => key.startsWith('web/')));
  });

  it('pages limits by project, each project whole on its page', async () => {
    const first = await get(api, '/v1/organizations/acme/limits?limit=1');
    expect(first.json.items.map((l: any) => `${l.project}:${l.service}/${l.resourceType}:${l.regions.length}`)).toEqual([
      'batch:compute/instances:2',
      'batch:storage/volumes:1',
    ]);
    const all = await walk(api, '/v1/organizations/acme/limits', 1, false);
    expect(all.map((l) => `${l.project}:${l.service}`)).toEqual(['batch:compute', 'batch:storage', 'web:compute', 'web:storage']);
    expect(all[2].regions.map((r: any) => [r.region, r.configuredLimit, r.activeLimit, r.hostStatus])).toEqual([
      ['eu-1', 5, 5, 'none'],
      ['us-1', 7, 7, 'none'],
    ]);
    expect((await get(api, '/v1/organizations/acme/limits?project=web')).json.items).toHaveLength(2);
    expect((await get(api, '/v1/organizations/beta/limits')).json).toEqual({ items: [], nextCursor: null });
  });

  it('answers who the caller is', async () => {
    expect((await get(api, '/v1/whoami')).json).toEqual({ principal: 'admin', role: 'service-admin', organization: null, project: null });
    const { token } = await api.test.ledger.createToken({ role: 'org-admin', organization: 'acme' });
    const response = await send(api.app, { method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } });
    expect(response.json).toMatchObject({ role: 'org-admin', organization: 'acme', project: null });
    // An org-admin listing organizations sees its own, with or without a matching prefix.
    const own = await send(api.app, { method: 'GET', url: '/v1/organizations?include=quotas', headers: { authorization: `Bearer ${token}` } });
    expect(own.json.items.map((o: any) => [o.id, o.quotas.length])).toEqual([['acme', 1]]);
    const other = await send(api.app, { method: 'GET', url: '/v1/organizations?prefix=beta', headers: { authorization: `Bearer ${token}` } });
    expect(other.json.items).toEqual([]);
  });

  it.each([
    ['/v1/organizations?prefix=ACME', 400],
    ['/v1/organizations?include=everything', 400],
    ['/v1/organizations/acme/allocations?cursor=bogus', 400],
    ['/v1/organizations/acme/allocations?project=Web', 400],
    ['/v1/organizations/acme/allocations?limit=0', 400],
    ['/v1/organizations/acme/limits?cursor=bogus', 400],
    ['/v1/organizations/acme/limits?limit=101', 400],
    ['/v1/organizations?include=quotas&limit=101', 400],
    ['/v1/organizations/nope/allocations', 404],
    ['/v1/organizations/nope/limits', 404],
  ])('refuses %s with %i', async (url, status) => {
    const before = await api.test.ledger.readJournal('acme', 0, 1000);
    const response = await get(api, url);
    expectProblem(response, status === 404 ? 'not-found' : 'invalid-request');
    expect(await api.test.ledger.readJournal('acme', 0, 1000)).toEqual(before);
  });
});
