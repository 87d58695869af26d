// Goal: `?dryRun=true` on every decision route answers exactly what the real request would get
// now — status, problem or body — with `Allot-Dry-Run: true`, and writes nothing: the journal's
// revision, every counter and everything the API shows are unchanged, and an Idempotency-Key
// sent with it is not consumed — but it is checked and looked up as the real request's would
// be: malformed, 400; used by the real request, its answer replayed; used for another, 422.
// Method: per engine and per route (allocation create, replace, delete; hold create, confirm,
// release; organization quotas; project caps and guarantees; batch), successes and refusals:
// the dry run, then a snapshot compared with the one before, then the real request (with the
// key the dry run carried), whose answer must match the dry run's (ids and times aside).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engines } from '../support/engines.js';
import { closeApi, openApi, send, snapshot, type ApiHarness } from './harness.js';

const base = '/v1/organizations/acme';
const web = `${base}/projects/web`;
const gpu = (id: string, committed = 1) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed }] });

/** What may differ between a dry run and the real request made after it: new ids and times. */
function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value === 'string') return value.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>');
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([name]) => !['id', 'createdAt', 'updatedAt', 'expiresAt', 'resolvedAt', 'location', 'instance', 'existingAllocationId'].includes(name))
      .map(([name, item]) => [name, comparable(item)]),
  );
}

interface Case {
  name: string;
  request: () => Promise<{ method: 'POST' | 'PUT' | 'DELETE'; url: string; body?: unknown; headers?: Record<string, string> }>;
}

describe.each(engines)('dry runs on %s', (engine) => {
  let api: ApiHarness;
  let seq = 0;
  const create = async (id: string, committed = 1) =>
    (await send(api.app, { method: 'POST', url: `${web}/allocations`, body: gpu(id, committed) })).json;
  const hold = async (id: string) =>
    (await send(api.app, { method: 'POST', url: `${web}/holds`, body: { ...gpu(id), ttlSeconds: 600 } })).json;
  const state = async () => ({
    shown: await snapshot(api.app),
    journal: (await send(api.app, { method: 'GET', url: `${base}/journal?tail=1` })).json.lastRevision,
    holds: (await send(api.app, { method: 'GET', url: `${web}/holds` })).json,
    projectQuota: (await send(api.app, { method: 'GET', url: `${web}/quotas` })).json,
    counters: await api.test.ledger.verifyCounters(),
  });

  beforeAll(async () => {
    api = await openApi(engine);
    const { ledger } = api.test;
    await ledger.putKind('gpus', { displayName: 'GPUs', default: 0 });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.putProject('acme', 'api', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 20 }]);
  });
  afterAll(async () => closeApi(api));

  const cases: Case[] = [
    { name: 'allocation create', request: async () => ({ method: 'POST', url: `${web}/allocations`, body: gpu(`c-${(seq += 1)}`) }) },
    { name: 'allocation create over quota (409)', request: async () => ({ method: 'POST', url: `${web}/allocations`, body: gpu(`o-${(seq += 1)}`, 999) }) },
    { name: 'allocation create of a taken resource (409)', request: async () => ({ method: 'POST', url: `${web}/allocations`, body: gpu((await create(`t-${(seq += 1)}`)).resource.id) }) },
    {
      name: 'allocation replace',
      request: async () => {
        const made = await create(`r-${(seq += 1)}`);
        return { method: 'PUT', url: `${web}/allocations/${made.id}`, body: gpu(made.resource.id, 2), headers: { 'if-match': '"1"' } };
      },
    },
    {
      name: 'allocation replace with a stale If-Match (412)',
      request: async () => {
        const made = await create(`s-${(seq += 1)}`);
        return { method: 'PUT', url: `${web}/allocations/${made.id}`, body: gpu(made.resource.id, 2), headers: { 'if-match': '"7"' } };
      },
    },
    { name: 'allocation delete', request: async () => ({ method: 'DELETE', url: `${web}/allocations/${(await create(`d-${(seq += 1)}`)).id}` }) },
    { name: 'hold create', request: async () => ({ method: 'POST', url: `${web}/holds`, body: { ...gpu(`h-${(seq += 1)}`), ttlSeconds: 60 } }) },
    { name: 'hold confirm', request: async () => ({ method: 'POST', url: `${web}/holds/${(await hold(`hc-${(seq += 1)}`)).id}/confirm` }) },
    { name: 'hold release', request: async () => ({ method: 'POST', url: `${web}/holds/${(await hold(`hr-${(seq += 1)}`)).id}/release` }) },
    { name: 'organization quotas', request: async () => ({ method: 'PUT', url: `${base}/quotas`, body: { quotas: [{ kind: 'gpus', quantity: 20 + (seq += 1) }] } }) },
    { name: 'organization quota below usage (409)', request: async () => ({ method: 'PUT', url: `${base}/quotas`, body: { quotas: [{ kind: 'gpus', quantity: 0 }] } }) },
    { name: 'project caps and guarantees', request: async () => ({ method: 'PUT', url: `${web}/quotas`, body: { quotas: [{ kind: 'gpus', cap: 100 + (seq += 1), guaranteed: 1 }] } }) },
    {
      name: 'batch',
      request: async () => ({
        method: 'POST',
        url: `${base}/batch`,
        body: { mode: 'independent', operations: [{ op: 'allocation.create', project: 'web', body: gpu(`b-${(seq += 1)}`) }, { op: 'allocation.create', project: 'api', body: gpu(`b-${seq}`, 999) }] },
      }),
    },
    {
      name: 'atomic batch refused (409)',
      request: async () => ({
        method: 'POST',
        url: `${base}/batch`,
        body: { mode: 'atomic', operations: [{ op: 'allocation.create', project: 'web', body: gpu(`a-${(seq += 1)}`) }, { op: 'allocation.create', project: 'api', body: gpu(`a-${seq}b`, 999) }] },
      }),
    },
  ];

  it.each(cases)('$name: the real answer, nothing written, no key consumed', async ({ request }) => {
    const { method, url, body, headers } = await request();
    const key = { 'idempotency-key': `dry-${engine}-${(seq += 1)}` };
    const before = await state();
    const dry = await send(api.app, { method, url: `${url}?dryRun=true`, body, headers: { ...headers, ...key } });
    expect(dry.headers['allot-dry-run']).toBe('true');
    expect(await state()).toEqual(before);
    const real = await send(api.app, { method, url, body, headers: { ...headers, ...key } });
    expect(real.headers['idempotent-replayed']).toBeUndefined();
    expect(real.headers['allot-dry-run']).toBeUndefined();
    expect(dry.status, dry.text).toBe(real.status);
    expect(comparable(dry.json)).toEqual(comparable(real.json));
    expect(dry.headers['etag']).toBe(real.headers['etag']);
    if (real.status < 300 && real.status !== 204) expect(await state()).not.toEqual(before);
  });

  it.each(cases)('$name: after the real request, a dry run with its key is answered as a retry would be', async ({ request }) => {
    const { method, url, body, headers } = await request();
    const key = { 'idempotency-key': `dry-after-${engine}-${(seq += 1)}` };
    const real = await send(api.app, { method, url, body, headers: { ...headers, ...key } });
    const before = await state();
    const dry = await send(api.app, { method, url: `${url}?dryRun=true`, body, headers: { ...headers, ...key } });
    expect(dry.headers['allot-dry-run']).toBe('true');
    expect(dry.headers['idempotent-replayed']).toBe('true');
    expect(dry.status).toBe(real.status);
    expect(dry.text).toBe(real.text);
    // Another request under the key is refused, as it would be for real.
    const other = await send(api.app, { method: 'POST', url: `${web}/allocations?dryRun=true`, body: gpu(`o-${(seq += 1)}`), headers: key });
    expect(other.status, other.text).toBe(422);
    expect(await state()).toEqual(before);
  });

  it('a malformed Idempotency-Key is refused on a dry run as on the real request', async () => {
    for (const key of ['k'.repeat(300), 'a b']) {
      const real = await send(api.app, { method: 'POST', url: `${web}/allocations`, body: gpu(`m-${(seq += 1)}`), headers: { 'idempotency-key': key } });
      const dry = await send(api.app, { method: 'POST', url: `${web}/allocations?dryRun=true`, body: gpu(`m-${(seq += 1)}`), headers: { 'idempotency-key': key } });
      expect([real.status, dry.status]).toEqual([400, 400]);
    }
  });

  it('?dryRun=false is a real request, and any other value is refused', async () => {
    const real = await send(api.app, { method: 'POST', url: `${web}/allocations?dryRun=false`, body: gpu(`f-${(seq += 1)}`) });
    expect(real.status).toBe(201);
    const bad = await send(api.app, { method: 'POST', url: `${web}/allocations?dryRun=yes`, body: gpu(`f-${(seq += 1)}`) });
    expect(bad.status).toBe(400);
  });
});
