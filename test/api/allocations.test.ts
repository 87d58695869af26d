// Goal: the allocation routes do what they document: POST → 201 with an id and a Location
// that reads it back; PUT replaces (generation + 1, lines replaced, createdAt kept); DELETE is
// 204 and idempotent (an unknown id is 404); lists filter by resourceKind/resourceId and page
// with cursors; one live allocation per referenced resource; quantity strings are stored as
// exact integers; and the quotas' usage follows every change.
// Method: per engine, a fresh ledger and app; an ordered `ApiCase` table through
// `app.inject`, remembering ids from earlier answers; cursor walks over the lists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engines } from '../support/engines.js';
import {
  closeApi,
  getJson,
  openApi,
  quotasOf,
  runCase,
  uuidPattern,
  walkPages,
  type ApiCase,
  type ApiHarness,
} from './harness.js';

const Mi = 1024 ** 2;
const Gi = 1024 ** 3;
const Ti = 1024 ** 4;

const web = '/v1/organizations/acme/projects/web/allocations';
const other = '/v1/organizations/acme/projects/api/allocations';

describe.each(engines)('allocations API on %s', (engine) => {
  let api: ApiHarness;
  const ids: Record<string, string> = {};
  const seen: Record<string, any> = {};
  const at = (name: string) => () => `${web}/${ids[name]}`;

  beforeAll(async () => {
    api = await openApi(engine);
  });
  afterAll(() => closeApi(api));

  const setup: ApiCase[] = [
    { name: 'kind gpus', method: 'PUT', url: '/v1/resource-kinds/gpus', body: { displayName: 'GPUs', default: '10k' }, status: 201 },
    { name: 'kind ram', method: 'PUT', url: '/v1/resource-kinds/ram', body: { displayName: 'RAM', format: 'binary' }, status: 201 },
    { name: 'kind cpu', method: 'PUT', url: '/v1/resource-kinds/cpu', body: { displayName: 'CPU' }, status: 201 },
    { name: 'org acme', method: 'PUT', url: '/v1/organizations/acme', body: {}, status: 201 },
    { name: 'project web', method: 'PUT', url: '/v1/organizations/acme/projects/web', body: {}, status: 201 },
    { name: 'project api', method: 'PUT', url: '/v1/organizations/acme/projects/api', body: {}, status: 201 },
  ];

  const cases: ApiCase[] = [
    {
      name: 'POST → 201 with an id, a Location that names it, lines sorted by kind',
      method: 'POST',
      url: web,
      body: {
        resource: { kind: 'vm', id: 'vm-1' },
        allocations: [
          { kind: 'ram', reserved: '500Mi' },
          { kind: 'gpus', committed: 2 },
        ],
      },
      status: 201,
      json: (body, response) => {
        expect(body.id).toMatch(uuidPattern);
        expect(response.headers.location).toBe(`${web}/${body.id}`);
        expect(response.headers.etag).toBe('"1"');
        expect(body).toEqual({
          id: body.id,
          organization: 'acme',
          project: 'web',
          resource: { kind: 'vm', id: 'vm-1' },
          allocations: [
            { kind: 'gpus', committed: 2, reserved: 0 },
            { kind: 'ram', committed: 0, reserved: 500 * Mi },
          ],
          generation: 1,
          createdBy: 'admin',
          updatedBy: 'admin',
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
        });
        ids.vm1 = body.id;
        seen.vm1 = body;
      },
    },
    {
      name: 'GET the Location → the same allocation',
      method: 'GET',
      url: at('vm1'),
      status: 200,
      json: (body) => expect(body).toEqual(seen.vm1),
    },
    {
      name: 'PUT replaces: lines replaced (ram dropped), quantity strings exact, generation 2',
      method: 'PUT',
      url: at('vm1'),
      body: { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 1, reserved: '2k' }] },
      status: 200,
      json: (body) => {
        expect(body).toMatchObject({
          id: ids.vm1,
          resource: { kind: 'vm', id: 'vm-1' },
          allocations: [{ kind: 'gpus', committed: 1, reserved: 2000 }],
          generation: 2,
          createdAt: seen.vm1.createdAt,
        });
      },
    },
    {
      name: 'GET after PUT → generation 2 and the new lines',
      method: 'GET',
      url: at('vm1'),
      status: 200,
      json: (body) => {
        expect(body.generation).toBe(2);
        expect(body.allocations).toEqual([{ kind: 'gpus', committed: 1, reserved: 2000 }]);
      },
    },
    {
      name: 'PUT again → generation 3; "1Ti" stored exactly',
      method: 'PUT',
      url: at('vm1'),
      body: { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 2 }, { kind: 'ram', committed: '1Ti' }] },
      status: 200,
      json: (body) => {
        expect(body.generation).toBe(3);
        expect(body.allocations).toEqual([
          { kind: 'gpus', committed: 2, reserved: 0 },
          { kind: 'ram', committed: Ti, reserved: 0 },
        ]);
      },
    },
    {
      name: 'POST vm-2',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: '2k' }] },
      status: 201,
      json: (body) => {
        expect(body.allocations).toEqual([{ kind: 'cpu', committed: 2000, reserved: 0 }]);
        ids.vm2 = body.id;
      },
    },
    {
      name: 'POST vm-3',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-3' }, allocations: [{ kind: 'gpus', reserved: 1 }] },
      status: 201,
      json: (body) => (ids.vm3 = body.id),
    },
    {
      name: 'POST volume disk-1',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'volume', id: 'disk-1' }, allocations: [{ kind: 'ram', committed: '1Gi' }] },
      status: 201,
      json: (body) => (ids.disk1 = body.id),
    },
    {
      name: 'POST in project api',
      method: 'POST',
      url: other,
      body: { resource: { kind: 'vm', id: 'api-1' }, allocations: [{ kind: 'cpu', committed: 1 }] },
      status: 201,
      json: (body) => {
        expect(body.project).toBe('api');
        ids.api1 = body.id;
      },
    },
    {
      name: 'GET list → the project’s live allocations, by id (creation order)',
      method: 'GET',
      url: web,
      status: 200,
      json: (body) => {
        expect(body.items.map((a: any) => a.id)).toEqual([ids.vm1, ids.vm2, ids.vm3, ids.disk1]);
        expect(body.nextCursor).toBeNull();
        expect(body.items[0]).toMatchObject({ generation: 3, resource: { kind: 'vm', id: 'vm-1' } });
      },
    },
    {
      name: 'GET list ?resourceKind=vm',
      method: 'GET',
      url: `${web}?resourceKind=vm`,
      status: 200,
      json: (body) => expect(body.items.map((a: any) => a.id)).toEqual([ids.vm1, ids.vm2, ids.vm3]),
    },
    {
      name: 'GET list ?resourceKind=volume',
      method: 'GET',
      url: `${web}?resourceKind=volume`,
      status: 200,
      json: (body) => expect(body.items.map((a: any) => a.id)).toEqual([ids.disk1]),
    },
    {
      name: 'GET list ?resourceId=vm-2',
      method: 'GET',
      url: `${web}?resourceId=vm-2`,
      status: 200,
      json: (body) => {
        expect(body.items).toHaveLength(1);
        expect(body.items[0]).toMatchObject({ id: ids.vm2, allocations: [{ kind: 'cpu', committed: 2000, reserved: 0 }] });
      },
    },
    {
      name: 'GET list ?resourceKind=vm&resourceId=disk-1 → none',
      method: 'GET',
      url: `${web}?resourceKind=vm&resourceId=disk-1`,
      status: 200,
      json: (body) => expect(body).toEqual({ items: [], nextCursor: null }),
    },
    {
      name: 'GET list of the other project → only its own',
      method: 'GET',
      url: other,
      status: 200,
      json: (body) => expect(body.items.map((a: any) => a.id)).toEqual([ids.api1]),
    },
    {
      name: 'an allocation is not reachable through another project → 404',
      method: 'GET',
      url: () => `${other}/${ids.vm1}`,
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'GET list with an invalid cursor → 400',
      method: 'GET',
      url: `${web}?cursor=bm90LWpzb24`,
      status: 400,
      problem: 'invalid-request',
    },
    // One live allocation per referenced resource (per organization)
    {
      name: 'POST for a resource that has a live allocation → 409 with its id',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 1 }] },
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm2),
    },
    {
      name: 'the same resource from another project of the organization → 409 as well',
      method: 'POST',
      url: other,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 1 }] },
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm2),
    },
    {
      name: 'the same resource id under another resource kind is another resource → 201',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'volume', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 1 }] },
      status: 201,
      json: (body) => (ids.volVm2 = body.id),
    },
    {
      name: 'PUT moving an allocation onto a resource that has one → 409',
      method: 'PUT',
      url: at('vm3'),
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'gpus', reserved: 1 }] },
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm2),
    },
    {
      name: 'PUT moving an allocation onto a free resource id → 200',
      method: 'PUT',
      url: at('vm3'),
      body: { resource: { kind: 'vm', id: 'vm-33' }, allocations: [{ kind: 'gpus', reserved: 1 }] },
      status: 200,
      json: (body) => expect(body).toMatchObject({ resource: { kind: 'vm', id: 'vm-33' }, generation: 2 }),
    },
    // Delete
    {
      name: 'DELETE → 204 with no body',
      method: 'DELETE',
      url: at('vm1'),
      status: 204,
      json: (_body, response) => expect(response.text).toBe(''),
    },
    { name: 'DELETE again → 204 (idempotent)', method: 'DELETE', url: at('vm1'), status: 204 },
    { name: 'GET a deleted allocation → 404', method: 'GET', url: at('vm1'), status: 404, problem: 'not-found' },
    {
      name: 'PUT a deleted allocation → 404',
      method: 'PUT',
      url: at('vm1'),
      body: { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 1 }] },
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'DELETE an unknown id → 404',
      method: 'DELETE',
      url: `${web}/01900000-0000-7000-8000-000000000000`,
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'DELETE through another project → 404, and the allocation stays',
      method: 'DELETE',
      url: () => `${other}/${ids.vm2}`,
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'the list no longer shows the deleted allocation',
      method: 'GET',
      url: `${web}?resourceKind=vm`,
      status: 200,
      json: (body) => expect(body.items.map((a: any) => a.id)).toEqual([ids.vm2, ids.vm3]),
    },
    {
      name: 'the deleted resource may be allocated again, under a new id',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 1 }] },
      status: 201,
      json: (body) => {
        expect(body.id).not.toBe(ids.vm1);
        expect(body.generation).toBe(1);
        ids.vm1b = body.id;
      },
    },
  ];

  for (const apiCase of [...setup, ...cases]) {
    it(apiCase.name, async () => {
      await runCase(api.app, apiCase);
    });
  }

  it('the quotas follow every change: usage is the sum of the live allocations', async () => {
    const quotas = await quotasOf(api.app, 'acme');
    // gpus: vm-33 reserved 1, vm-1 (again) committed 1; ram: disk-1 1Gi; cpu: vm-2 2000,
    // api-1 1, volume/vm-2 1.
    expect(quotas.gpus).toMatchObject({ committed: 1, reserved: 1, used: 2, quantity: 10_000, free: 9998 });
    expect(quotas.ram).toMatchObject({ committed: Gi, reserved: 0, used: Gi, quantity: null });
    expect(quotas.cpu).toMatchObject({ committed: 2002, reserved: 0, used: 2002 });
    expect(await api.test.ledger.verifyCounters()).toEqual([]);
  });

  it('limit=1 walks every live allocation once, in order, then nextCursor is null', async () => {
    const all = await getJson(api.app, web);
    expect(all.items).toHaveLength(5);
    const walk = await walkPages(api.app, web, 1);
    expect(walk.items).toEqual(all.items);
    expect(walk.pages).toEqual([1, 1, 1, 1, 1]);
  });

  it('cursor paging keeps the filters: resourceKind=vm with limit=2', async () => {
    const walk = await walkPages(api.app, `${web}?resourceKind=vm`, 2);
    expect(walk.items.map((a) => a.id)).toEqual([ids.vm2, ids.vm3, ids.vm1b]);
    expect(walk.pages).toEqual([2, 1]);
  });

  it('cursor paging with resourceId', async () => {
    const walk = await walkPages(api.app, `${web}?resourceId=vm-2`, 1);
    expect(walk.items.map((a) => a.id)).toEqual([ids.vm2, ids.volVm2]);
  });
});
