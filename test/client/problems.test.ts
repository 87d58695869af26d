// Goal: every kind of refusal reaches a client caller as an `AllotProblem` with the right code,
// status and detail, and with the extension members its code documents (docs/api.md#errors):
// violations, errors, existingAllocationId, belowUsage, overGuaranteed, live, resolution,
// currentGeneration, failedOperation and results; a refusal is thrown, never retried.
// Method: a real server per engine; each case makes the refusal through the typed client and
// catches what it throws. `refusal` fails the test when the call succeeds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotProblem, type AllotClient } from '../../src/client/index.js';
import { engines } from '../support/engines.js';
import { startClientServer, type ClientServer } from './support.js';

const organization = 'acme';
const org = { organization };
const proj = { organization, project: 'web' };

/** What `call` threw, which must be an AllotProblem. */
async function refusal(call: () => Promise<unknown>): Promise<AllotProblem> {
  try {
    await call();
  } catch (error) {
    expect(error).toBeInstanceOf(AllotProblem);
    return error as AllotProblem;
  }
  throw new Error('expected a refusal, the call succeeded');
}

describe.each(engines)('refusals as AllotProblem (%s)', (engine) => {
  let server: ClientServer;
  let client: AllotClient;
  const allocate = (id: string, committed: number) =>
    client.POST('/v1/organizations/{organization}/projects/{project}/allocations', {
      params: { path: proj },
      body: { resource: { kind: 'server', id }, allocations: [{ kind: 'gpus', committed }] },
    });

  beforeAll(async () => {
    server = await startClientServer(engine);
    client = server.client();
    await client.PUT('/v1/resource-kinds/{kind}', { params: { path: { kind: 'gpus' } }, body: { displayName: 'GPUs' } });
    await client.PUT('/v1/organizations/{organization}', { params: { path: org }, body: {} });
    await client.PUT('/v1/organizations/{organization}/projects/{project}', { params: { path: proj }, body: {} });
    await client.PUT('/v1/organizations/{organization}/quotas', { params: { path: org }, body: { quotas: [{ kind: 'gpus', quantity: 10 }] } });
  });
  afterAll(async () => server?.close());

  it('quota-exceeded carries its violations', async () => {
    await allocate('srv-1', 3);
    const problem = await refusal(() => allocate('srv-2', 8));
    expect(problem).toMatchObject({ code: 'quota-exceeded', status: 409, type: '/problems/quota-exceeded' });
    expect(problem.detail).toContain('quota exceeded');
    expect(problem.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 8, used: 3, limit: 10 }]);
    expect(problem.message).toBe(`409 quota-exceeded: ${problem.detail}`);
    expect(AllotProblem.is(problem, 'quota-exceeded')).toBe(true);
    expect(problem.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('invalid-request names the field in errors', async () => {
    const problem = await refusal(() =>
      client.POST('/v1/organizations/{organization}/projects/{project}/allocations', {
        params: { path: proj },
        body: { resource: { kind: 'server', id: 'srv-x' }, allocations: [{ kind: 'gpus', committed: '1.5' }] },
      }),
    );
    expect(problem).toMatchObject({ code: 'invalid-request', status: 400 });
    expect(problem.errors?.some((error) => error.field.includes('committed'))).toBe(true);
  });

  it('duplicate-allocation names the existing allocation', async () => {
    const existing = await allocate('srv-dup', 1);
    const problem = await refusal(() => allocate('srv-dup', 1));
    expect(problem).toMatchObject({ code: 'duplicate-allocation', existingAllocationId: existing.data.id });
  });

  it('precondition-failed carries the current generation, also after update() gives up', async () => {
    const created = await allocate('srv-etag', 1);
    const path = { ...proj, id: created.data.id };
    const body = { resource: { kind: 'server', id: 'srv-etag' }, allocations: [{ kind: 'gpus', committed: 2 }] };
    await client.PUT('/v1/organizations/{organization}/projects/{project}/allocations/{id}', { params: { path }, body });
    const problem = await refusal(() =>
      client.PUT('/v1/organizations/{organization}/projects/{project}/allocations/{id}', {
        params: { path, header: { 'if-match': '"1"' } },
        body,
      }),
    );
    expect(problem).toMatchObject({ code: 'precondition-failed', status: 412, currentGeneration: 2 });

    // A writer that always gets in between: update() tries `attempts` times, then throws the 412.
    let reads = 0;
    const stubborn = await refusal(() =>
      client.update('/v1/organizations/{organization}/projects/{project}/allocations/{id}', { path }, async (current) => {
        reads += 1;
        await client.PUT('/v1/organizations/{organization}/projects/{project}/allocations/{id}', { params: { path }, body });
        return { resource: current.resource, allocations: [{ kind: 'gpus', committed: 1 }] };
      }, { attempts: 2 }),
    );
    expect(reads).toBe(2);
    expect(stubborn.code).toBe('precondition-failed');
  });

  it('quota-below-usage lists the kinds below usage; guarantees-exceed-quota the guarantees', async () => {
    const below = await refusal(() =>
      client.PUT('/v1/organizations/{organization}/quotas', { params: { path: org }, body: { quotas: [{ kind: 'gpus', quantity: 1 }] } }),
    );
    expect(below.code).toBe('quota-below-usage');
    expect(below.belowUsage).toEqual([{ kind: 'gpus', quantity: 1, used: expect.any(Number) }]);
    const over = await refusal(() =>
      client.PUT('/v1/organizations/{organization}/projects/{project}/quotas', {
        params: { path: proj },
        body: { quotas: [{ kind: 'gpus', guaranteed: 11 }] },
      }),
    );
    expect(over.code).toBe('guarantees-exceed-quota');
    expect(over.overGuaranteed?.[0]).toMatchObject({ kind: 'gpus', guaranteed: 11, quantity: 10 });
  });

  it('hold-already-resolved says how; project-not-empty what is left', async () => {
    const hold = await client.POST('/v1/organizations/{organization}/projects/{project}/holds', {
      params: { path: proj },
      body: { resource: { kind: 'server', id: 'srv-hold' }, allocations: [{ kind: 'gpus', committed: 1 }], ttlSeconds: 60 },
    });
    const path = { ...proj, id: hold.data.id };
    await client.POST('/v1/organizations/{organization}/projects/{project}/holds/{id}/release', { params: { path } });
    const again = await refusal(() => client.POST('/v1/organizations/{organization}/projects/{project}/holds/{id}/release', { params: { path } }));
    expect(again).toMatchObject({ code: 'hold-already-resolved', resolution: 'released' });

    const notEmpty = await refusal(() => client.DELETE('/v1/organizations/{organization}/projects/{project}', { params: { path: proj } }));
    expect(notEmpty.code).toBe('project-not-empty');
    expect(notEmpty.live?.allocations).toBeGreaterThan(0);
  });

  it('an atomic batch names the failed operation and every result', async () => {
    const problem = await refusal(() =>
      client.POST('/v1/organizations/{organization}/batch', {
        params: { path: org },
        body: {
          mode: 'atomic',
          operations: [
            { op: 'allocation.create', project: 'web', body: { resource: { kind: 'server', id: 'srv-b1' }, allocations: [{ kind: 'gpus', committed: 1 }] } },
            { op: 'allocation.create', project: 'web', body: { resource: { kind: 'server', id: 'srv-b2' }, allocations: [{ kind: 'gpus', committed: 100 }] } },
          ],
        },
      }),
    );
    expect(problem).toMatchObject({ code: 'quota-exceeded', failedOperation: 1 });
    expect(problem.results?.map((result) => result.status)).toEqual([null, 409]);
  });

  it('idempotency-key-reused: the caller’s own key, sent again with another body', async () => {
    const header = { 'idempotency-key': `reuse-${engine}` };
    await client.POST('/v1/organizations/{organization}/projects/{project}/allocations', {
      params: { path: proj, header },
      body: { resource: { kind: 'server', id: 'srv-k1' }, allocations: [{ kind: 'gpus', committed: 1 }] },
    });
    const problem = await refusal(() =>
      client.POST('/v1/organizations/{organization}/projects/{project}/allocations', {
        params: { path: proj, header },
        body: { resource: { kind: 'server', id: 'srv-k2' }, allocations: [{ kind: 'gpus', committed: 1 }] },
      }),
    );
    expect(problem).toMatchObject({ code: 'idempotency-key-reused', status: 422 });
  });

  it('not-found, unauthorized and forbidden', async () => {
    const missing = await refusal(() => client.GET('/v1/organizations/{organization}', { params: { path: { organization: 'nobody' } } }));
    expect(missing).toMatchObject({ code: 'not-found', status: 404 });
    const stranger = server.client({ token: 'not-a-token' });
    expect(await refusal(() => stranger.GET('/v1/whoami'))).toMatchObject({ code: 'unauthorized', status: 401 });
    const created = await client.POST('/v1/tokens', { body: { role: 'reader', organization } });
    const reader = server.client({ token: () => created.data.token });
    const forbidden = await refusal(() =>
      reader.PUT('/v1/organizations/{organization}/quotas', { params: { path: org }, body: { quotas: [{ kind: 'gpus', quantity: 20 }] } }),
    );
    expect(forbidden).toMatchObject({ code: 'forbidden', status: 403 });
  });

  it('raw answers a refusal instead of throwing', async () => {
    const { data, error, response } = await client.raw.GET('/v1/organizations/{organization}', { params: { path: { organization: 'nobody' } } });
    expect(data).toBeUndefined();
    expect(response.status).toBe(404);
    expect(error?.type).toBe('/problems/not-found');
  });
});
