// Goal: GET/PUT quotas show and set the limit in force per kind, exactly: explicit quota, else
// the kind's default, else unlimited; quantity strings become exact integers; a cut below
// usage needs force and leaves the kind over limit, where only changes that do not raise its
// usage pass, while other kinds of the same organization stay usable.
// Method: per engine, a fresh ledger and app; ordered `ApiCase` tables through `app.inject`,
// each case checking the whole quota row (quantity, used, committed, reserved, free, source,
// overLimit) of the kinds it touches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantityMax } from '../../src/domain/constants.js';
import { rowOf } from '../support/bodies.js';
import { engines } from '../support/engines.js';
import {
  closeApi,
  openApi,
  quotasOf,
  runCase,
  type ApiCase,
  type ApiHarness,
} from './harness.js';

const Ki = 1024;
const Mi = 1024 ** 2;
const Gi = 1024 ** 3;
const Ti = 1024 ** 4;

const allocations = (organization: string, project: string) =>
  `/v1/organizations/${organization}/projects/${project}/allocations`;

describe.each(engines)('quotas API on %s', (engine) => {
  let api: ApiHarness;
  const ids: Record<string, string> = {};
  const remember = (name: string) => (body: any) => {
    ids[name] = body.id;
  };

  beforeAll(async () => {
    api = await openApi(engine);
  });
  afterAll(() => closeApi(api));

  const setup: ApiCase[] = [
    {
      name: 'kind gpus, default 4',
      method: 'PUT',
      url: '/v1/resource-kinds/gpus',
      body: { displayName: 'GPUs', description: 'Accelerators', default: 4 },
      status: 201,
    },
    {
      name: 'kind ram, binary, default 1Ti',
      method: 'PUT',
      url: '/v1/resource-kinds/ram',
      body: { displayName: 'Memory', format: 'binary', default: '1Ti' },
      status: 201,
    },
    { name: 'kind cpu, no default', method: 'PUT', url: '/v1/resource-kinds/cpu', body: { displayName: 'CPU' }, status: 201 },
    {
      name: 'kind licenses, default 0',
      method: 'PUT',
      url: '/v1/resource-kinds/licenses',
      body: { displayName: 'Licenses', default: 0 },
      status: 201,
    },
    { name: 'org acme', method: 'PUT', url: '/v1/organizations/acme', body: {}, status: 201 },
    { name: 'org beta', method: 'PUT', url: '/v1/organizations/beta', body: {}, status: 201 },
    { name: 'project acme/web', method: 'PUT', url: '/v1/organizations/acme/projects/web', body: {}, status: 201 },
    { name: 'project beta/main', method: 'PUT', url: '/v1/organizations/beta/projects/main', body: {}, status: 201 },
  ];

  const cases: ApiCase[] = [
    {
      name: 'GET quotas lists every kind with every field; free = quantity - used',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => {
        expect(body.organization).toBe('acme');
        expect(body.quotas.map((quota: any) => quota.kind)).toEqual(['cpu', 'gpus', 'licenses', 'ram']);
        expect(rowOf(body, 'gpus')).toEqual({
          kind: 'gpus',
          displayName: 'GPUs',
          description: 'Accelerators',
          default: 4,
          format: 'decimal',
          quantity: 4,
          source: 'default',
          used: 0,
          committed: 0,
          reserved: 0,
          held: 0,
          generation: 0,
          updatedBy: null,
          free: 4,
          overLimit: false,
          guaranteed: 0,
          freeForAnyProject: 4,
        });
        expect(rowOf(body, 'cpu')).toEqual({
          kind: 'cpu',
          displayName: 'CPU',
          description: '',
          default: null,
          format: 'decimal',
          quantity: null,
          source: 'unlimited',
          used: 0,
          committed: 0,
          reserved: 0,
          held: 0,
          generation: 0,
          updatedBy: null,
          free: null,
          overLimit: false,
          guaranteed: 0,
          freeForAnyProject: null,
        });
        expect(rowOf(body, 'ram')).toMatchObject({ format: 'binary', quantity: Ti, free: Ti, source: 'default' });
        expect(rowOf(body, 'licenses')).toMatchObject({ quantity: 0, free: 0, source: 'default' });
      },
    },
    // Quantity strings in quotas
    {
      name: 'PUT quotas with "2k", "500Mi" and an integer → exact integers, source quota',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'gpus', quantity: '2k' }, { kind: 'ram', quantity: '500Mi' }, { kind: 'cpu', quantity: 64 }] },
      status: 200,
      json: (body) => {
        expect(body.organization).toBe('acme');
        expect(body.quotas).toHaveLength(4);
        expect(rowOf(body, 'gpus')).toMatchObject({ quantity: 2000, source: 'quota', free: 2000, default: 4, generation: 1 });
        expect(rowOf(body, 'ram')).toMatchObject({ quantity: 500 * Mi, source: 'quota', free: 500 * Mi });
        expect(rowOf(body, 'cpu')).toMatchObject({ quantity: 64, source: 'quota', free: 64 });
        expect(rowOf(body, 'licenses')).toMatchObject({ quantity: 0, source: 'default' });
      },
    },
    {
      name: 'PUT quotas "1Ti" → 1099511627776; kinds not listed keep their quota',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'ram', quantity: '1Ti' }] },
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'ram')).toMatchObject({ quantity: Ti, source: 'quota' });
        expect(rowOf(body, 'gpus')).toMatchObject({ quantity: 2000, source: 'quota' });
        expect(rowOf(body, 'cpu')).toMatchObject({ quantity: 64, source: 'quota' });
      },
    },
    {
      name: 'GET quotas reads back what PUT set',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'ram').quantity).toBe(Ti);
        expect(rowOf(body, 'gpus').quantity).toBe(2000);
      },
    },
    // An explicit quota overrides the default, for that organization only
    {
      name: "another organization still gets the kinds' defaults",
      method: 'GET',
      url: '/v1/organizations/beta/quotas',
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'gpus')).toMatchObject({ quantity: 4, source: 'default' });
        expect(rowOf(body, 'cpu')).toMatchObject({ quantity: null, source: 'unlimited', free: null });
      },
    },
    {
      name: 'the default refuses beyond it: beta allocates 5 gpus over default 4 → 409',
      method: 'POST',
      url: allocations('beta', 'main'),
      body: { resource: { kind: 'vm', id: 'b-1' }, allocations: [{ kind: 'gpus', committed: 5 }] },
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 5, used: 0, limit: 4 }]),
    },
    {
      name: 'the explicit quota overrides it: acme allocates 5 gpus → 201',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'vm', id: 'a-1' }, allocations: [{ kind: 'gpus', committed: 3, reserved: 2 }] },
      status: 201,
      json: remember('a1'),
    },
    {
      name: 'usage shows committed, reserved, used and free = quantity - used',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) =>
        expect(rowOf(body, 'gpus')).toMatchObject({
          quantity: 2000,
          committed: 3,
          reserved: 2,
          used: 5,
          free: 1995,
          overLimit: false,
        }),
    },
    // Unlimited kinds
    {
      name: 'a kind with no quota and no default is unlimited: 2^53-1 in beta passes',
      method: 'POST',
      url: allocations('beta', 'main'),
      body: { resource: { kind: 'vm', id: 'huge' }, allocations: [{ kind: 'cpu', committed: quantityMax }] },
      status: 201,
    },
    {
      name: 'the unlimited kind shows quantity null, free null, the usage, not over limit',
      method: 'GET',
      url: '/v1/organizations/beta/quotas',
      status: 200,
      json: (body) =>
        expect(rowOf(body, 'cpu')).toMatchObject({
          quantity: null,
          free: null,
          source: 'unlimited',
          used: quantityMax,
          committed: quantityMax,
          overLimit: false,
        }),
    },
    // A default of 0
    {
      name: 'a kind with default 0 refuses any positive allocation',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'license', id: 'l-1' }, allocations: [{ kind: 'licenses', committed: 1 }] },
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'licenses', scope: 'organization', requested: 1, used: 0, limit: 0 }]),
    },
    {
      name: 'until the organization gets a quota for it',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'licenses', quantity: 3 }] },
      status: 200,
      json: (body) => expect(rowOf(body, 'licenses')).toMatchObject({ quantity: 3, source: 'quota', free: 3 }),
    },
    {
      name: 'then the allocation passes',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'license', id: 'l-1' }, allocations: [{ kind: 'licenses', committed: 2 }] },
      status: 201,
      json: remember('l1'),
    },
    // quantity: null removes the explicit quota
    {
      name: 'quantity null would bring back default 0, below usage 2 → 409 quota-below-usage',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'licenses', quantity: null }] },
      status: 409,
      problem: 'quota-below-usage',
      json: (body) => expect(body.belowUsage).toEqual([{ kind: 'licenses', quantity: 0, used: 2 }]),
    },
    {
      name: 'the refused removal changed nothing',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => expect(rowOf(body, 'licenses')).toMatchObject({ quantity: 3, source: 'quota', used: 2 }),
    },
    {
      name: 'free the licenses',
      method: 'DELETE',
      url: () => `${allocations('acme', 'web')}/${ids.l1}`,
      status: 204,
    },
    {
      name: 'quantity null removes the quota: the default applies again',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'licenses', quantity: null }, { kind: 'cpu', quantity: null }] },
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'licenses')).toMatchObject({ quantity: 0, source: 'default', free: 0, used: 0 });
        expect(rowOf(body, 'cpu')).toMatchObject({ quantity: null, source: 'unlimited', free: null });
      },
    },
    {
      name: 'and the default refuses again',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'license', id: 'l-2' }, allocations: [{ kind: 'licenses', reserved: 1 }] },
      status: 409,
      problem: 'quota-exceeded',
    },
  ];

  // Over limit after a forced cut (acme: gpus used 5 of 2000, from allocation a1).
  const overLimit: ApiCase[] = [
    {
      name: 'an allocation using ram in acme',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'vm', id: 'a-2' }, allocations: [{ kind: 'ram', committed: '100Mi' }] },
      status: 201,
      json: remember('a2'),
    },
    {
      name: 'a quota below usage is refused: 409 quota-below-usage naming the kind',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'gpus', quantity: 2 }] },
      status: 409,
      problem: 'quota-below-usage',
      json: (body) => expect(body.belowUsage).toEqual([{ kind: 'gpus', quantity: 2, used: 5 }]),
    },
    {
      name: 'a request with one kind below usage sets none of its kinds',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas?force=false',
      body: { quotas: [{ kind: 'ram', quantity: '2Gi' }, { kind: 'gpus', quantity: 2 }] },
      status: 409,
      problem: 'quota-below-usage',
    },
    {
      name: 'both refusals left the quotas as they were',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'gpus')).toMatchObject({ quantity: 2000, used: 5, overLimit: false });
        expect(rowOf(body, 'ram')).toMatchObject({ quantity: Ti, used: 100 * Mi });
      },
    },
    {
      name: '?force=true sets it anyway; the kind is over limit, free 0',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas?force=true',
      body: { quotas: [{ kind: 'gpus', quantity: 2 }] },
      status: 200,
      json: (body) =>
        expect(rowOf(body, 'gpus')).toMatchObject({
          quantity: 2,
          source: 'quota',
          used: 5,
          committed: 3,
          reserved: 2,
          free: 0,
          overLimit: true,
        }),
    },
    {
      name: 'GET quotas shows overLimit true',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'gpus').overLimit).toBe(true);
        expect(rowOf(body, 'ram').overLimit).toBe(false);
      },
    },
    {
      name: 'a new allocation raising the over kind is refused with exact numbers',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'vm', id: 'a-3' }, allocations: [{ kind: 'gpus', committed: 1 }] },
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 1, used: 5, limit: 2 }]),
    },
    {
      name: 'replacing an allocation so it raises the over kind is refused',
      method: 'PUT',
      url: () => `${allocations('acme', 'web')}/${ids.a1}`,
      body: { resource: { kind: 'vm', id: 'a-1' }, allocations: [{ kind: 'gpus', committed: 4, reserved: 2 }] },
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 1, used: 5, limit: 2 }]),
    },
    {
      name: 'moving usage between committed and reserved (no rise) passes',
      method: 'PUT',
      url: () => `${allocations('acme', 'web')}/${ids.a1}`,
      body: { resource: { kind: 'vm', id: 'a-1' }, allocations: [{ kind: 'gpus', committed: 5 }] },
      status: 200,
      json: (body) => expect(body.generation).toBe(2),
    },
    {
      name: 'reducing the over kind passes',
      method: 'PUT',
      url: () => `${allocations('acme', 'web')}/${ids.a1}`,
      body: { resource: { kind: 'vm', id: 'a-1' }, allocations: [{ kind: 'gpus', committed: 4 }] },
      status: 200,
      json: (body) => expect(body.allocations).toEqual([{ kind: 'gpus', committed: 4, reserved: 0 }]),
    },
    {
      name: 'a new allocation touching only another kind passes',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'vm', id: 'a-4' }, allocations: [{ kind: 'ram', committed: '1Gi' }, { kind: 'cpu', committed: 8 }] },
      status: 201,
    },
    {
      name: 'raising another kind in an existing allocation passes',
      method: 'PUT',
      url: () => `${allocations('acme', 'web')}/${ids.a2}`,
      body: { resource: { kind: 'vm', id: 'a-2' }, allocations: [{ kind: 'ram', committed: '200Mi', reserved: '1Ki' }] },
      status: 200,
    },
    {
      name: 'one allocation raising the over kind and another kind is refused for the over kind only',
      method: 'POST',
      url: allocations('acme', 'web'),
      body: { resource: { kind: 'vm', id: 'a-5' }, allocations: [{ kind: 'gpus', reserved: 1 }, { kind: 'ram', committed: 1 }] },
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 1, used: 4, limit: 2 }]),
    },
    {
      name: 'usage after all that: gpus 4 (still over 2), ram 1Gi + 200Mi + 1Ki',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => {
        expect(rowOf(body, 'gpus')).toMatchObject({ used: 4, committed: 4, reserved: 0, free: 0, overLimit: true });
        expect(rowOf(body, 'ram')).toMatchObject({
          used: Gi + 200 * Mi + Ki,
          committed: Gi + 200 * Mi,
          reserved: Ki,
          free: Ti - (Gi + 200 * Mi + Ki),
          overLimit: false,
        });
        expect(rowOf(body, 'cpu')).toMatchObject({ used: 8, quantity: null, free: null });
      },
    },
    {
      name: 'deleting the over allocation frees it: no longer over limit',
      method: 'DELETE',
      url: () => `${allocations('acme', 'web')}/${ids.a1}`,
      status: 204,
    },
    {
      name: 'gpus used 0 of 2, free 2',
      method: 'GET',
      url: '/v1/organizations/acme/quotas',
      status: 200,
      json: (body) => expect(rowOf(body, 'gpus')).toMatchObject({ used: 0, quantity: 2, free: 2, overLimit: false }),
    },
  ];

  for (const apiCase of [...setup, ...cases, ...overLimit]) {
    it(apiCase.name, async () => {
      await runCase(api.app, apiCase);
    });
  }

  it('beta is untouched by what acme did', async () => {
    const beta = await quotasOf(api.app, 'beta');
    expect(beta.gpus).toMatchObject({ quantity: 4, used: 0, source: 'default' });
    expect(beta.ram).toMatchObject({ quantity: Ti, used: 0, source: 'default' });
  });

  it('counters equal the live allocations', async () => {
    expect(await api.test.ledger.verifyCounters()).toEqual([]);
  });
});
