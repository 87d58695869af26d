// Goal: what the API acknowledged survives a restart: kinds, organizations, projects, quotas
// (including an over-limit state left by force), live allocations with their generations, and
// deleted allocations (a repeated DELETE is still 204, the freed resource is still free).
// Method: per engine, one database from `createTestDatabase`; build state through the API,
// read everything back, close the app and the ledger (not the database), open a new ledger
// with `openLedger({ db: database.url })` and a new app, and read everything back again: it
// must be identical. Then the restarted app must still decide from the same counters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { adminToken, getJson, runCase, snapshot, type ApiCase } from './harness.js';

const Mi = 1024 ** 2;
const Ti = 1024 ** 4;

const web = '/v1/organizations/acme/projects/web/allocations';

/** Everything `snapshot` shows, plus each allocation read by id. */
async function readEverything(app: FastifyInstance, ids: Record<string, string>) {
  const byId: Record<string, unknown> = {};
  for (const [name, id] of Object.entries(ids)) {
    if (name.startsWith('deleted')) continue;
    const [organization, project] = name.split(':');
    byId[name] = await getJson(app, `/v1/organizations/${organization}/projects/${project}/allocations/${id}`);
  }
  return {
    everything: await snapshot(app),
    byId,
    organization: await getJson(app, '/v1/organizations/acme'),
    project: await getJson(app, '/v1/organizations/acme/projects/web'),
  };
}

describe.each(engines)('restart persistence on %s', (engine) => {
  let database: TestDatabase;
  let ledger: Ledger | undefined;
  let app: FastifyInstance | undefined;
  const ids: Record<string, string> = {};
  let before: unknown;

  const open = async () => {
    ledger = await openLedger({ db: database.url });
    app = await buildApp({ ledger, adminToken });
  };
  const close = async () => {
    await app?.close();
    await ledger?.close();
    app = undefined;
    ledger = undefined;
  };

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await open();
  });
  afterAll(async () => {
    await close();
    await database.drop();
  });

  const remember = (name: string) => (body: any) => {
    ids[name] = body.id;
  };

  const build: ApiCase[] = [
    { name: 'kind gpus', method: 'PUT', url: '/v1/resource-kinds/gpus', body: { displayName: 'GPUs', description: 'Accelerators', default: 4 }, status: 201 },
    { name: 'kind ram', method: 'PUT', url: '/v1/resource-kinds/ram', body: { displayName: 'Memory', format: 'binary', default: '1Ti' }, status: 201 },
    { name: 'kind cpu', method: 'PUT', url: '/v1/resource-kinds/cpu', body: { displayName: 'CPU' }, status: 201 },
    { name: 'kind gpus renamed', method: 'PUT', url: '/v1/resource-kinds/gpus', body: { displayName: 'GPU cards', description: 'Accelerators', default: 4 }, status: 200 },
    { name: 'org acme', method: 'PUT', url: '/v1/organizations/acme', body: { displayName: 'Acme' }, status: 201 },
    { name: 'org beta', method: 'PUT', url: '/v1/organizations/beta', body: {}, status: 201 },
    { name: 'project acme/web', method: 'PUT', url: '/v1/organizations/acme/projects/web', body: { displayName: 'Web' }, status: 201 },
    { name: 'project acme/api', method: 'PUT', url: '/v1/organizations/acme/projects/api', body: {}, status: 201 },
    { name: 'project beta/main', method: 'PUT', url: '/v1/organizations/beta/projects/main', body: {}, status: 201 },
    {
      name: 'quotas of acme',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas',
      body: { quotas: [{ kind: 'gpus', quantity: 10 }, { kind: 'ram', quantity: '512Gi' }, { kind: 'cpu', quantity: '2k' }] },
      status: 200,
    },
    {
      name: 'allocation acme/web vm-1',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 3, reserved: 1 }, { kind: 'ram', committed: '500Mi' }] },
      status: 201,
      json: remember('acme:web:vm-1'),
    },
    {
      name: 'allocation acme/web vm-2',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 16 }] },
      status: 201,
      json: remember('acme:web:vm-2'),
    },
    {
      name: 'allocation acme/api job-1',
      method: 'POST',
      url: '/v1/organizations/acme/projects/api/allocations',
      body: { resource: { kind: 'job', id: 'job-1' }, allocations: [{ kind: 'gpus', committed: 2 }] },
      status: 201,
      json: remember('acme:api:job-1'),
    },
    {
      name: 'allocation beta/main huge (cpu unlimited in beta)',
      method: 'POST',
      url: '/v1/organizations/beta/projects/main/allocations',
      body: { resource: { kind: 'vm', id: 'big' }, allocations: [{ kind: 'cpu', committed: 2 ** 53 - 1 }] },
      status: 201,
      json: remember('beta:main:big'),
    },
    {
      name: 'replace vm-2 twice (generation 3)',
      method: 'PUT',
      url: () => `${web}/${ids['acme:web:vm-2']}`,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 8, reserved: 8 }] },
      status: 200,
    },
    {
      name: 'replace vm-2 again',
      method: 'PUT',
      url: () => `${web}/${ids['acme:web:vm-2']}`,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 4, reserved: 8 }] },
      status: 200,
      json: (body) => expect(body.generation).toBe(3),
    },
    {
      name: 'an allocation that is then deleted',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'gone' }, allocations: [{ kind: 'gpus', committed: 1 }] },
      status: 201,
      json: remember('deleted'),
    },
    { name: 'delete it', method: 'DELETE', url: () => `${web}/${ids.deleted}`, status: 204 },
    {
      name: 'force gpus below usage: acme over limit',
      method: 'PUT',
      url: '/v1/organizations/acme/quotas?force=true',
      body: { quotas: [{ kind: 'gpus', quantity: 5 }] },
      status: 200,
    },
  ];

  for (const apiCase of build) {
    it(`before restart: ${apiCase.name}`, async () => {
      await runCase(app!, apiCase);
    });
  }

  it('reads the state before the restart', async () => {
    before = await readEverything(app!, ids);
    const quotas = await getJson(app!, '/v1/organizations/acme/quotas');
    const gpus = quotas.quotas.find((q: any) => q.kind === 'gpus');
    expect(gpus).toMatchObject({ quantity: 5, used: 6, overLimit: true });
  });

  it('reads back everything identically after closing and reopening the ledger', async () => {
    await close();
    await open();
    const after = await readEverything(app!, ids);
    expect(after).toEqual(before);
  });

  it('kept the exact values: quotas, big integers, generations', async () => {
    const quotas = await getJson(app!, '/v1/organizations/acme/quotas');
    const byKind = Object.fromEntries(quotas.quotas.map((q: any) => [q.kind, q]));
    expect(byKind.gpus).toMatchObject({ quantity: 5, source: 'quota', used: 6, committed: 5, reserved: 1, overLimit: true, free: 0 });
    expect(byKind.ram).toMatchObject({ quantity: 512 * 1024 * Mi, source: 'quota', used: 500 * Mi, default: Ti, format: 'binary' });
    expect(byKind.cpu).toMatchObject({ quantity: 2000, source: 'quota', used: 12, committed: 4, reserved: 8 });
    const beta = await getJson(app!, '/v1/organizations/beta/quotas');
    expect(beta.quotas.find((q: any) => q.kind === 'cpu')).toMatchObject({ used: 2 ** 53 - 1, quantity: null });
    const vm2 = await getJson(app!, `${web}/${ids['acme:web:vm-2']}`);
    expect(vm2).toMatchObject({ generation: 3, allocations: [{ kind: 'cpu', committed: 4, reserved: 8 }] });
    expect(await ledger!.verifyCounters()).toEqual([]);
  });

  const afterRestart: ApiCase[] = [
    { name: 'the deleted allocation is still gone', method: 'GET', url: () => `${web}/${ids.deleted}`, status: 404, problem: 'not-found' },
    { name: 'DELETE of the deleted allocation is still 204', method: 'DELETE', url: () => `${web}/${ids.deleted}`, status: 204 },
    {
      name: 'the live resource is still taken',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'cpu', committed: 1 }] },
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids['acme:web:vm-1']),
    },
    {
      name: 'the over-limit kind still refuses a rise, with the persisted numbers',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'vm-3' }, allocations: [{ kind: 'gpus', committed: 1 }] },
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 1, used: 6, limit: 5 }]),
    },
    {
      name: 'a replace after restart continues the generation',
      method: 'PUT',
      url: () => `${web}/${ids['acme:web:vm-2']}`,
      body: { resource: { kind: 'vm', id: 'vm-2' }, allocations: [{ kind: 'cpu', committed: 4 }] },
      status: 200,
      json: (body) => expect(body.generation).toBe(4),
    },
    {
      name: 'the freed resource can be allocated again',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'gone' }, allocations: [{ kind: 'cpu', committed: 1 }] },
      status: 201,
    },
  ];

  for (const apiCase of afterRestart) {
    it(`after restart: ${apiCase.name}`, async () => {
      await runCase(app!, apiCase);
    });
  }
});
