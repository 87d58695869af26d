// Goal: the typed client (allot/client) drives every route of the API against a real server on
// every engine, and each answer is the one the API documents: kinds, organizations, projects,
// quotas, project quotas, allocations, holds (confirm, release), batches, the journal and its
// watch stream, tokens and whoami, limits, regions and history; ETags come back on versioned
// reads and writes, and an ETag-guarded write passes with a current one.
// Method: one server per engine (buildApp listening on 127.0.0.1), one client; the cases run in
// order, each building on the last. A middleware on the client records each request's
// `METHOD /path` as the document names it, and the last case checks that every route of the
// generated route list (src/client/routes.ts) was called.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModifyWrite, routes, type AllotClient } from '../../src/client/index.js';
import { engines } from '../support/engines.js';
import { startClientServer, type ClientServer } from './support.js';

const organization = 'acme';
const project = 'web';
const other = 'train';
const org = { organization };
const proj = { organization, project };

describe.each(engines)('the typed client drives every route (%s)', (engine) => {
  let server: ClientServer;
  let client: AllotClient;
  const called = new Set<string>();
  let allocationId = '';
  let confirmedHoldId = '';
  const recorder = { onRequest: ({ request, schemaPath }: { request: Request; schemaPath: string }) => void called.add(`${request.method} ${schemaPath}`) };

  beforeAll(async () => {
    server = await startClientServer(engine);
    client = server.client();
    client.raw.use(recorder);
  });
  afterAll(async () => server?.close());

  it('resource kinds: create, update, read, list', async () => {
    const created = await client.PUT('/v1/resource-kinds/{kind}', {
      params: { path: { kind: 'gpus' } },
      body: { displayName: 'GPUs', description: 'Accelerators', default: 0, format: 'decimal' },
    });
    expect(created.status).toBe(201);
    expect(created.data.name).toBe('gpus');
    const updated = await client.PUT('/v1/resource-kinds/{kind}', {
      params: { path: { kind: 'memory' } },
      body: { displayName: 'Memory', format: 'binary' },
    });
    expect(updated.status).toBe(201);
    const one = await client.GET('/v1/resource-kinds/{kind}', { params: { path: { kind: 'gpus' } } });
    expect(one.data).toMatchObject({ name: 'gpus', displayName: 'GPUs', default: 0 });
    const all = await client.GET('/v1/resource-kinds');
    expect(all.data.items.map((kind) => kind.name).sort()).toEqual(['gpus', 'memory']);
  });

  it('organizations and projects: put, read, list', async () => {
    expect((await client.PUT('/v1/organizations/{organization}', { params: { path: org }, body: { displayName: 'Acme' } })).status).toBe(201);
    expect((await client.GET('/v1/organizations/{organization}', { params: { path: org } })).data.id).toBe(organization);
    const page = await client.GET('/v1/organizations', { params: { query: { prefix: 'ac', include: 'quotas' } } });
    expect(page.data.items.map((item) => item.id)).toEqual([organization]);
    for (const id of [project, other]) {
      const put = await client.PUT('/v1/organizations/{organization}/projects/{project}', {
        params: { path: { organization, project: id } },
        body: { displayName: id.toUpperCase() },
      });
      expect(put.status).toBe(201);
    }
    expect((await client.GET('/v1/organizations/{organization}/projects/{project}', { params: { path: proj } })).data.id).toBe(project);
    const projects = await client.GET('/v1/organizations/{organization}/projects', { params: { path: org } });
    expect(projects.data.items.map((item) => item.id)).toEqual([other, project].sort());
  });

  it("quotas and project quotas: set, then read with usage; writes honour a current ETag", async () => {
    const set = await client.PUT('/v1/organizations/{organization}/quotas', {
      params: { path: org },
      body: { quotas: [{ kind: 'gpus', quantity: 10 }] },
    });
    expect(set.etag).toMatch(/^"\d+"$/);
    const read = await client.GET('/v1/organizations/{organization}/quotas', { params: { path: org } });
    expect(read.etag).toBe(set.etag);
    expect(read.data.quotas.find((quota) => quota.kind === 'gpus')).toMatchObject({ quantity: 10, used: 0, source: 'quota' });

    const projectRead = await client.GET('/v1/organizations/{organization}/projects/{project}/quotas', { params: { path: proj } });
    const projectSet = await client.PUT('/v1/organizations/{organization}/projects/{project}/quotas', {
      params: { path: proj, header: { 'if-match': projectRead.etag! } },
      body: { quotas: [{ kind: 'gpus', cap: 8, guaranteed: 2 }] },
    });
    expect(projectSet.data.quotas.find((quota) => quota.kind === 'gpus')).toMatchObject({ cap: 8, guaranteed: 2 });
  });

  it('allocations: create, read, find, list across projects, replace with If-Match, delete', async () => {
    const created = await client.POST('/v1/organizations/{organization}/projects/{project}/allocations', {
      params: { path: proj },
      body: { resource: { kind: 'server', id: 'srv-1' }, allocations: [{ kind: 'gpus', committed: 2, reserved: 1 }, { kind: 'memory', committed: '64Gi' }] },
    });
    expect(created.status).toBe(201);
    expect(created.response.headers.get('location')).toContain(created.data.id);
    expect(created.data.allocations).toEqual([
      { kind: 'gpus', committed: 2, reserved: 1 },
      { kind: 'memory', committed: 64 * 1024 ** 3, reserved: 0 },
    ]);
    allocationId = created.data.id;
    const path = { ...proj, id: allocationId };
    const read = await client.GET('/v1/organizations/{organization}/projects/{project}/allocations/{id}', { params: { path } });
    expect(read.etag).toBe('"1"');
    const found = await client.GET('/v1/organizations/{organization}/projects/{project}/allocations', {
      params: { path: proj, query: { resourceKind: 'server', resourceId: 'srv-1' } },
    });
    expect(found.data.items.map((item) => item.id)).toEqual([allocationId]);
    const ofOrganization = await client.GET('/v1/organizations/{organization}/allocations', { params: { path: org, query: { limit: '10' } } });
    expect(ofOrganization.data.items.map((item) => item.id)).toEqual([allocationId]);

    const replaced = await client.PUT('/v1/organizations/{organization}/projects/{project}/allocations/{id}', {
      params: { path, header: { 'if-match': read.etag! } },
      body: { resource: { kind: 'server', id: 'srv-1' }, allocations: [{ kind: 'gpus', committed: 3 }] },
    });
    expect(replaced.data.generation).toBe(2);
    expect(replaced.etag).toBe('"2"');

    const second = await client.POST('/v1/organizations/{organization}/projects/{project}/allocations', {
      params: { path: proj },
      body: { resource: { kind: 'server', id: 'srv-2' }, allocations: [{ kind: 'gpus', committed: 1 }] },
    });
    const gone = await client.DELETE('/v1/organizations/{organization}/projects/{project}/allocations/{id}', {
      params: { path: { ...proj, id: second.data.id } },
    });
    expect(gone.status).toBe(204);
    expect(gone.data).toBeUndefined();
  });

  it('holds: create, list, read, confirm under an ETag (readModifyWrite), release', async () => {
    const hold = async (id: string) =>
      client.POST('/v1/organizations/{organization}/projects/{project}/holds', {
        params: { path: proj },
        body: { resource: { kind: 'server', id }, allocations: [{ kind: 'gpus', committed: 1 }], ttlSeconds: 300 },
      });
    const first = await hold('srv-h1');
    const second = await hold('srv-h2');
    expect(first.data.status).toBe('pending');
    const pending = await client.GET('/v1/organizations/{organization}/projects/{project}/holds', { params: { path: proj } });
    expect(pending.data.items.map((item) => item.id).sort()).toEqual([first.data.id, second.data.id].sort());

    const path = { ...proj, id: first.data.id };
    const confirmed = await readModifyWrite(
      () => client.GET('/v1/organizations/{organization}/projects/{project}/holds/{id}', { params: { path } }),
      (read) =>
        client.POST('/v1/organizations/{organization}/projects/{project}/holds/{id}/confirm', {
          params: { path, header: { 'if-match': read.etag! } },
          body: {},
        }),
    );
    expect(confirmed.data.status).toBe('confirmed');
    confirmedHoldId = first.data.id;

    const released = await client.POST('/v1/organizations/{organization}/projects/{project}/holds/{id}/release', {
      params: { path: { ...proj, id: second.data.id } },
    });
    expect(released.data.status).toBe('released');
  });

  it('batch: an atomic move of a resource between projects', async () => {
    const batch = await client.POST('/v1/organizations/{organization}/batch', {
      params: { path: org },
      body: {
        mode: 'atomic',
        operations: [
          { op: 'allocation.delete', project, id: confirmedHoldId },
          { op: 'allocation.create', project: other, body: { resource: { kind: 'server', id: 'srv-h1' }, allocations: [{ kind: 'gpus', committed: 1 }] } },
        ],
      },
    });
    expect(batch.data.results.map((result) => result.status)).toEqual([204, 201]);
  });

  it('journal: read after a revision, the tail, and the watch stream', async () => {
    const journal = await client.GET('/v1/organizations/{organization}/journal', { params: { path: org, query: { after: '0' } } });
    const actions = journal.data.items.map((entry) => entry.action);
    expect(actions).toContain('allocation.created');
    expect(actions).toContain('hold.confirmed');
    const tail = await client.GET('/v1/organizations/{organization}/journal', { params: { path: org, query: { tail: '1' } } });
    expect(tail.data.items).toHaveLength(1);
    expect(tail.data.items[0]!.revision).toBe(journal.data.lastRevision);

    const abort = new AbortController();
    const watch = await client.GET('/v1/organizations/{organization}/watch', {
      params: { path: org, query: { after: String(journal.data.lastRevision - 1) } },
      parseAs: 'stream',
      signal: abort.signal,
    });
    expect(watch.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = watch.data!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    abort.abort();
    expect(text).toContain('event: journal');
    expect(text).toContain(`id: ${journal.data.lastRevision}`);
  });

  it('tokens: create, list, whoami with the new token, revoke', async () => {
    const created = await client.POST('/v1/tokens', { body: { role: 'reader', organization } });
    expect(created.status).toBe(201);
    const reader = server.client({ token: created.data.token });
    reader.raw.use(recorder);
    const me = await reader.GET('/v1/whoami');
    expect(me.data).toMatchObject({ role: 'reader', organization, project: null });
    const list = await client.GET('/v1/tokens');
    expect(list.data.items.map((token) => token.id)).toContain(created.data.id);
    expect((await client.DELETE('/v1/tokens/{id}', { params: { path: { id: created.data.id } } })).status).toBe(204);
  });

  it('limits: set, read, list, report usage, history, delete', async () => {
    const path = { ...proj, service: 'compute', resourceType: 'instances' };
    const set = await client.PUT('/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}', {
      params: { path },
      body: { regions: [{ region: 'eu-1', limit: 50 }] },
    });
    expect(set.data.regions[0]).toMatchObject({ region: 'eu-1', configuredLimit: 50 });
    const usage = await client.PUT('/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}/regions/{region}/usage', {
      params: { path: { ...path, region: 'eu-1' } },
      body: { usage: 12 },
    });
    expect(usage.data).toMatchObject({ region: 'eu-1', usage: 12, activeLimit: 50 });
    const one = await client.GET('/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}', { params: { path } });
    expect(one.data.service).toBe('compute');
    const ofProject = await client.GET('/v1/organizations/{organization}/projects/{project}/limits', { params: { path: proj } });
    expect(ofProject.data.items).toHaveLength(1);
    const ofOrganization = await client.GET('/v1/organizations/{organization}/limits', { params: { path: org } });
    expect(ofOrganization.data.items.length).toBeGreaterThan(0);
    const history = await client.GET('/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}/history', {
      params: { path, query: { region: 'eu-1', step: '60' } },
    });
    expect(history.data.items.map((series) => series.series)).toEqual([`limit:${project}/compute/instances/eu-1`]);
    expect((await client.DELETE('/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}', { params: { path } })).status).toBe(204);
  });

  it('regions: put, hosts, list, read, a project’s regions', async () => {
    expect((await client.PUT('/v1/regions/{region}', { params: { path: { region: 'eu-1' } }, body: { displayName: 'Europe 1' } })).status).toBe(201);
    const host = await client.PUT('/v1/regions/{region}/hosts/{service}', {
      params: { path: { region: 'eu-1', service: 'compute' } },
      body: { endpoint: 'http://127.0.0.1:9/limits', token: 'host-secret' },
    });
    expect(host.data).toMatchObject({ service: 'compute', status: 'unknown' });
    const list = await client.GET('/v1/regions');
    expect(list.data.items.map((region) => region.name)).toEqual(['eu-1']);
    expect((await client.GET('/v1/regions/{region}', { params: { path: { region: 'eu-1' } } })).data.hosts).toHaveLength(1);
    expect((await client.DELETE('/v1/regions/{region}/hosts/{service}', { params: { path: { region: 'eu-1', service: 'compute' } } })).status).toBe(204);
    const setRegions = await client.PUT('/v1/organizations/{organization}/projects/{project}/regions', {
      params: { path: proj },
      body: { primary: 'eu-1', enabled: ['eu-1'] },
    });
    expect(setRegions.data).toMatchObject({ primary: 'eu-1', enabled: ['eu-1'] });
    expect((await client.GET('/v1/organizations/{organization}/projects/{project}/regions', { params: { path: proj } })).data.primary).toBe('eu-1');
  });

  it("history: an organization's usage of a kind", async () => {
    const history = await client.GET('/v1/organizations/{organization}/history', { params: { path: org, query: { kind: 'gpus', step: '60' } } });
    expect(history.data.series).toBe('quota:gpus');
  });

  it('quota requests: policy, file, list, wait, approve, deny, cancel', async () => {
    const kind = { kind: 'gpus' };
    const policy = await client.PUT('/v1/resource-kinds/{kind}/request-policy', { params: { path: kind }, body: { decreaseMaxPercent: 40 } });
    expect(policy.data).toMatchObject({ autoApprove: null, decreaseMaxPercent: 40 });
    expect((await client.GET('/v1/resource-kinds/{kind}/request-policy', { params: { path: kind } })).data.decreaseMaxPercent).toBe(40);
    const file = (field: 'cap' | 'guaranteed', preferred: number) =>
      client.POST('/v1/organizations/{organization}/quota-requests', {
        params: { path: org },
        body: { kind: 'gpus', scope: 'project', project, field, preferred, justification: 'client test', contact: 'me@example.com' },
      });
    const filed = await file('cap', 11);
    expect(filed.status).toBe(201);
    const id = filed.data.id;
    const path = { organization, id };
    const waited = await client.GET('/v1/organizations/{organization}/quota-requests/{id}', { params: { path, query: { wait: '1s' } } });
    expect(waited.data.state).toBe(filed.data.state);
    const listed = await client.GET('/v1/organizations/{organization}/quota-requests', { params: { path: org, query: { state: filed.data.state } } });
    expect(listed.data.items.map((request) => request.id)).toContain(id);
    if (filed.data.state === 'pending') {
      expect((await client.POST('/v1/organizations/{organization}/quota-requests/{id}/approve', { params: { path }, body: {} })).data.state).toBe('approved');
    }
    const denied = await file('cap', 60);
    const deny = await client.POST('/v1/organizations/{organization}/quota-requests/{id}/deny', { params: { path: { organization, id: denied.data.id } }, body: { reason: 'no' } });
    expect(deny.data.state).toBe('denied');
    const cancelled = await file('cap', 70);
    const cancel = await client.POST('/v1/organizations/{organization}/quota-requests/{id}/cancel', { params: { path: { organization, id: cancelled.data.id } } });
    expect(cancel.data.state).toBe('cancelled');
  });

  it('subscriptions: an organization’s and every organization’s; read, resume, delete', async () => {
    const body = { url: 'http://127.0.0.1:9/hook', journal: {}, thresholds: [{ kind: 'gpus', scope: 'organization' as const, at: [0.8, 1] }] };
    const made = await client.POST('/v1/organizations/{organization}/subscriptions', { params: { path: org }, body });
    expect(made.data.secret).toMatch(/^whsec_/);
    const path = { organization, id: made.data.id };
    expect((await client.GET('/v1/organizations/{organization}/subscriptions', { params: { path: org } })).data.items).toHaveLength(1);
    expect((await client.GET('/v1/organizations/{organization}/subscriptions/{id}', { params: { path } })).data.thresholds).toEqual(body.thresholds);
    expect((await client.POST('/v1/organizations/{organization}/subscriptions/{id}/resume', { params: { path } })).data.state).toBe('active');
    expect((await client.DELETE('/v1/organizations/{organization}/subscriptions/{id}', { params: { path } })).status).toBe(204);
    const all = await client.POST('/v1/subscriptions', { body: { url: 'http://127.0.0.1:9/all', denials: { intervalSeconds: 3600 } } });
    const id = { id: all.data.id };
    expect(all.data.organization).toBeNull();
    expect((await client.GET('/v1/subscriptions')).data.items.map((item) => item.id)).toEqual([all.data.id]);
    expect((await client.GET('/v1/subscriptions/{id}', { params: { path: id } })).data.denials).toEqual({ intervalSeconds: 3600 });
    expect((await client.POST('/v1/subscriptions/{id}/resume', { params: { path: id } })).data.id).toBe(all.data.id);
    expect((await client.DELETE('/v1/subscriptions/{id}', { params: { path: id } })).status).toBe(204);
  });

  it('deleting a project with cascade ends its allocations', async () => {
    const deleted = await client.DELETE('/v1/organizations/{organization}/projects/{project}', {
      params: { path: { organization, project: other }, query: { cascade: 'true' } },
    });
    expect(deleted.status).toBe(204);
  });

  it('every route of the document was called through the client', () => {
    expect([...called].sort()).toEqual(Object.keys(routes).sort());
  });
});
