// Goal: `POST …/batch` decides many operations of one organization at once, each as its own
// route would: independent entries succeed or fail on their own; an atomic batch is all or
// none — a refusal in its last entry leaves nothing behind, a malformed entry refuses it whole,
// and a move of a resource between projects is never seen half done; each entry is authorized
// as its own request; one Idempotency-Key covers the batch; over 1,000 entries is a 413.
// Method: per engine, an app over a fresh ledger; batches through `app.inject`, compared with
// a snapshot of everything the API shows (and the journal) before and after; a concurrent
// reader polls the organization's allocations while atomic batches move one resource back and
// forth between two projects, and must always see it exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engines } from '../support/engines.js';
import { closeApi, expectFieldError, expectProblem, openApi, send, snapshot, type ApiHarness } from './harness.js';

const batchUrl = '/v1/organizations/acme/batch';
const gpu = (id: string, committed = 1) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed }] });

describe.each(engines)('batches on %s', (engine) => {
  let api: ApiHarness;
  const journalRevision = async () => (await send(api.app, { method: 'GET', url: '/v1/organizations/acme/journal?tail=1' })).json.lastRevision;

  beforeAll(async () => {
    api = await openApi(engine);
    const { ledger } = api.test;
    await ledger.putKind('gpus', { displayName: 'GPUs', default: 0 });
    await ledger.putOrganization('acme', {});
    await ledger.putOrganization('other', {});
    for (const project of ['web', 'api']) await ledger.putProject('acme', project, {});
    await ledger.putProject('other', 'web', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 10 }]);
    await ledger.setQuotas('other', [{ kind: 'gpus', quantity: 10 }]);
  });
  afterAll(async () => closeApi(api));

  it('independent: each entry answers as its route would, in order, refusals among them', async () => {
    const made = await send(api.app, { method: 'POST', url: '/v1/organizations/acme/projects/web/allocations', body: gpu('ind-0') });
    const response = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'independent',
        operations: [
          { op: 'allocation.create', project: 'web', body: gpu('ind-1') },
          { op: 'allocation.create', project: 'api', body: gpu('ind-2', 50) },
          { op: 'allocation.create', project: 'api', body: gpu('ind-1') },
          { op: 'hold.create', project: 'api', body: { ...gpu('ind-3'), ttlSeconds: 60 } },
          { op: 'allocation.delete', project: 'web', id: made.json.id, ifMatch: '"1"' },
          { op: 'allocation.create', project: 'web', body: { resource: { kind: 'vm', id: ' bad' }, allocations: [{ kind: 'gpus' }] } },
        ],
      },
    });
    expect(response.status, response.text).toBe(200);
    const results = response.json.results;
    expect(response.json.mode).toBe('independent');
    expect(results.map((r: any) => r.status)).toEqual([201, 409, 409, 201, 204, 400]);
    expect(results[0]).toMatchObject({ etag: '"1"', location: `/v1/organizations/acme/projects/web/allocations/${results[0].body.id}` });
    expect(results[0].body).toMatchObject({ project: 'web', resource: { kind: 'vm', id: 'ind-1' }, generation: 1 });
    expect(results[1].body).toMatchObject({ type: '/problems/quota-exceeded', violations: [{ kind: 'gpus', requested: 50 }] });
    expect(results[2].body).toMatchObject({ type: '/problems/duplicate-allocation', existingAllocationId: results[0].body.id });
    expect(results[3].body).toMatchObject({ status: 'pending', project: 'api' });
    expect(results[4].body).toBeUndefined();
    expectFieldError(results[5].body, 'resource.id');
    const quotas = (await send(api.app, { method: 'GET', url: '/v1/organizations/acme/quotas' })).json.quotas[0];
    expect({ committed: quotas.committed, held: quotas.held }).toEqual({ committed: 1, held: 1 });
  });

  it('atomic: a refusal in the last entry leaves nothing behind and names it', async () => {
    const before = await snapshot(api.app);
    const revision = await journalRevision();
    const response = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'atomic',
        operations: [
          { op: 'allocation.create', project: 'web', body: gpu('atom-1') },
          { op: 'hold.create', project: 'api', body: { ...gpu('atom-2'), ttlSeconds: 60 } },
          { op: 'allocation.create', project: 'api', body: gpu('atom-3', 9) },
        ],
      },
    });
    expectProblem(response, 'quota-exceeded');
    expect(response.json.failedOperation).toBe(2);
    expect(response.json.detail).toMatch(/^operation 2 \(allocation.create\): quota exceeded/);
    expect(response.json.results.map((r: any) => r.status)).toEqual([null, null, 409]);
    expect(await snapshot(api.app)).toEqual(before);
    expect(await journalRevision()).toBe(revision);
  });

  it('atomic: a malformed entry refuses the batch whole, naming its path', async () => {
    const before = await snapshot(api.app);
    const response = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'atomic',
        operations: [
          { op: 'allocation.create', project: 'web', body: gpu('mal-1') },
          { op: 'allocation.create', project: 'web', body: { resource: { kind: 'vm', id: 'mal-2' }, allocations: [{ kind: 'gpus', committed: -1 }] } },
        ],
      },
    });
    expectProblem(response, 'invalid-request');
    expect(response.json.failedOperation).toBe(1);
    expectFieldError(response.json, 'operations[1].body.allocations[0].committed');
    expect(await snapshot(api.app)).toEqual(before);
  });

  it('atomic: a resource moves between projects, and two allocations swap resources, in one step', async () => {
    const a = await send(api.app, { method: 'POST', url: '/v1/organizations/acme/projects/web/allocations', body: gpu('swap-a') });
    const b = await send(api.app, { method: 'POST', url: '/v1/organizations/acme/projects/web/allocations', body: gpu('swap-b') });
    const swapped = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'atomic',
        // In order, each valid where it stands: through a name neither has.
        operations: [
          { op: 'allocation.replace', project: 'web', id: a.json.id, body: gpu('swap-tmp') },
          { op: 'allocation.replace', project: 'web', id: b.json.id, body: gpu('swap-a') },
          { op: 'allocation.replace', project: 'web', id: a.json.id, body: gpu('swap-b') },
        ],
      },
    });
    expect(swapped.status, swapped.text).toBe(200);
    expect(swapped.json.results.map((r: any) => [r.status, r.body.resource.id])).toEqual([[200, 'swap-tmp'], [200, 'swap-a'], [200, 'swap-b']]);
    // Straight across, the first replace meets the other's resource: refused, nothing done.
    const across = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'atomic',
        operations: [
          { op: 'allocation.replace', project: 'web', id: a.json.id, body: gpu('swap-a') },
          { op: 'allocation.replace', project: 'web', id: b.json.id, body: gpu('swap-b') },
        ],
      },
    });
    expectProblem(across, 'duplicate-allocation');
    const moved = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'atomic',
        operations: [
          { op: 'allocation.delete', project: 'web', id: a.json.id },
          { op: 'allocation.create', project: 'api', body: gpu('swap-b') },
        ],
      },
    });
    expect(moved.status, moved.text).toBe(200);
    const found = await send(api.app, { method: 'GET', url: '/v1/organizations/acme/allocations?resourceKind=vm&resourceId=swap-b' });
    expect(found.json.items.map((item: any) => item.project)).toEqual(['api']);
  });

  it('a move between projects is never seen half done by a concurrent reader', async () => {
    let where = (await send(api.app, { method: 'POST', url: '/v1/organizations/acme/projects/web/allocations', body: gpu('mover') })).json;
    let moving = true;
    const seen: number[] = [];
    const reader = (async () => {
      while (moving) {
        const found = await send(api.app, { method: 'GET', url: '/v1/organizations/acme/allocations?resourceKind=vm&resourceId=mover' });
        seen.push(found.json.items.length);
        // inject answers in microtasks alone on SQLite: give the writer's request its turn.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let round = 0; round < 25; round += 1) {
      const to = where.project === 'web' ? 'api' : 'web';
      const moved = await send(api.app, {
        method: 'POST',
        url: batchUrl,
        body: {
          mode: 'atomic',
          operations: [
            { op: 'allocation.delete', project: where.project, id: where.id },
            { op: 'allocation.create', project: to, body: gpu('mover') },
          ],
        },
      });
      expect(moved.status, moved.text).toBe(200);
      where = moved.json.results[1].body;
    }
    moving = false;
    await reader;
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.every((count) => count === 1), `counts seen: ${seen.join(',')}`).toBe(true);
  });

  it('authorizes each entry as its own request: another project is a 404 for a project-member', async () => {
    const { token } = await api.test.ledger.createToken({ role: 'project-member', organization: 'acme', project: 'web' });
    const as = { authorization: `Bearer ${token}` };
    const mixed = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      headers: as,
      body: {
        mode: 'independent',
        operations: [
          { op: 'allocation.create', project: 'web', body: gpu('auth-1') },
          { op: 'allocation.create', project: 'api', body: gpu('auth-2') },
        ],
      },
    });
    expect(mixed.status, mixed.text).toBe(200);
    expect(mixed.json.results.map((r: any) => r.status)).toEqual([201, 404]);
    expect(mixed.json.results[1].body).toMatchObject({ type: '/problems/not-found' });
    const before = await snapshot(api.app);
    const atomic = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      headers: as,
      body: { mode: 'atomic', operations: [{ op: 'allocation.create', project: 'web', body: gpu('auth-3') }, { op: 'allocation.delete', project: 'api', id: mixed.json.results[0].body.id }] },
    });
    expectProblem(atomic, 'not-found');
    expect(await snapshot(api.app)).toEqual(before);
    // Another organization's batch route is not even there for it.
    expectProblem(await send(api.app, { method: 'POST', url: '/v1/organizations/other/batch', headers: as, body: { mode: 'independent', operations: [{ op: 'allocation.create', project: 'web', body: gpu('auth-4') }] } }), 'not-found');
  });

  it('one Idempotency-Key covers the whole batch', async () => {
    const body = { mode: 'independent', operations: [{ op: 'allocation.create', project: 'web', body: gpu('key-1') }, { op: 'allocation.create', project: 'web', body: gpu('key-2', 99) }] };
    const headers = { 'idempotency-key': `batch-${engine}` };
    const first = await send(api.app, { method: 'POST', url: batchUrl, body, headers });
    const revision = await journalRevision();
    const again = await send(api.app, { method: 'POST', url: batchUrl, body, headers });
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json).toEqual(first.json);
    expect(await journalRevision()).toBe(revision);
    expectProblem(await send(api.app, { method: 'POST', url: batchUrl, body: { ...body, mode: 'atomic' }, headers }), 'idempotency-key-reused');
  });

  it('refuses more than 1,000 entries (413) and entries that do not fit their route', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ op: 'allocation.create', project: 'web', body: gpu(`many-${i}`, 0) }));
    expectProblem(await send(api.app, { method: 'POST', url: batchUrl, body: { mode: 'independent', operations: many } }), 'payload-too-large');
    // Too many is a 413 whatever else is wrong with the entries, or the mode.
    const manyWrong = many.map(({ op }) => ({ op, project: 'Not A Project!' }));
    expectProblem(await send(api.app, { method: 'POST', url: batchUrl, body: { mode: 'sideways', operations: manyWrong } }), 'payload-too-large');
    const fine = await send(api.app, { method: 'POST', url: batchUrl, body: { mode: 'independent', operations: many.slice(0, 1000) } });
    expect(fine.status, fine.text.slice(0, 300)).toBe(200);
    expect(fine.json.results.every((r: any) => r.status === 201)).toBe(true);
    const wrong = await send(api.app, {
      method: 'POST',
      url: batchUrl,
      body: {
        mode: 'independent',
        operations: [
          { op: 'allocation.delete', project: 'web' },
          { op: 'allocation.create', project: 'web', id: '01900000-0000-7000-8000-000000000000', body: gpu('x') },
          { op: 'hold.release', project: 'web', id: '01900000-0000-7000-8000-000000000000', body: {} },
          { op: 'allocation.replace', project: 'web', id: '01900000-0000-7000-8000-000000000000', ifMatch: 'soon', body: gpu('x') },
        ],
      },
    });
    expect(wrong.json.results.map((r: any) => r.status)).toEqual([400, 400, 400, 400]);
    expectFieldError(wrong.json.results[0].body, 'id');
    expectFieldError(wrong.json.results[1].body, 'id');
    expectFieldError(wrong.json.results[2].body, 'body');
    expectFieldError(wrong.json.results[3].body, 'ifMatch');
    expectProblem(await send(api.app, { method: 'POST', url: batchUrl, body: { mode: 'independent', operations: [] } }), 'invalid-request');
  });
});
