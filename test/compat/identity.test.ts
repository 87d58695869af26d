// Goal: allot serves the quota and allocation paths of the identity service's published
// OpenAPI document (compat/uni-identity/server.spec.yaml) as that document and the issue define
// them, on every engine: documented statuses and bodies, the document's error schema, exact
// quota figures (used + free == quantity), allocation metadata round-trips, 409 for a second
// allocation of one resource, 403 over quota naming kind/total/limit with nothing persisted,
// per-kind decisions, auth, and no overcommit under concurrency (in process and across two
// `allot serve` processes on PostgreSQL); and allot's own view agrees with what it reports.
// Method: a client generated from the document (openapi-typescript + openapi-fetch, see
// contract.ts) drives `buildApp` through `app.inject` on each engine (and two real server
// processes for the multi-process race); every answer is checked against the response the
// document lists for that operation and status with Ajv; tenants and kinds are set up with
// the allot library or its /v1 API; the books (compat quotas, the ledger's allocations and
// journal, the stored rows) are snapshotted around every refused request.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, openTestLedger, type TestDatabase, type TestLedger } from '../support/engines.js';
import { call, startServer, testAdminToken, type ServerProcess } from '../support/server.js';
import {
  allocationPath,
  allocationsPath,
  commonEnum,
  expectDocumented,
  expectError,
  identityClient,
  quotasPath,
  schemaErrors,
  serverSchema,
  type IdentityClient,
} from './contract.js';
import type { components } from './generated/identity.js';

type AllocationWrite = components['schemas']['allocationWrite'];
type AllocationRead = components['schemas']['allocationRead'];
type QuotaRead = components['schemas']['quotaRead'];

const adminToken = 'compat-admin-token';
const unlimited = Number.MAX_SAFE_INTEGER;
const Gi = 1024 ** 3;

/** The resource kinds every test sees (kinds are global: every organization lists them all). */
const kinds = {
  clusters: { displayName: 'Clusters', description: 'All cluster types e.g. Kubernetes, compute, etc.', default: 5, format: 'decimal' },
  servers: { displayName: 'Servers', description: 'Virtual and bare-metal servers.', default: 20, format: 'decimal' },
  memory: { displayName: 'Memory', description: 'Server memory, in bytes.', default: 64 * Gi, format: 'binary' },
  gpus: { displayName: 'GPUs', description: 'Accelerators attached to servers.', default: 0, format: 'decimal' },
  addresses: { displayName: 'Public addresses', description: 'Public IPv4 addresses (no default: unlimited).', default: null, format: 'decimal' },
} as const;
type KindName = keyof typeof kinds;
const kindNames = Object.keys(kinds).sort() as KindName[];

/** Lines in kind order: allot answers them so, the document sets no order. */
const byKind = <T extends { kind: string }>(lines: readonly T[]) => [...lines].sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
const specOf = (spec: AllocationWrite['spec']) => ({ ...spec, allocations: byKind(spec.allocations) });

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A number in a text, not as part of a longer one. */
const numberIn = (value: number) => new RegExp(`(^|[^0-9])${value}([^0-9]|$)`);

function allocationBody(
  name: string,
  lines: Partial<Record<KindName, [committed: number, reserved: number]>>,
  extra: { kind?: string; id?: string; description?: string; tags?: { name: string; value: string }[] } = {},
): AllocationWrite {
  return {
    metadata: {
      name,
      ...(extra.description === undefined ? {} : { description: extra.description }),
      ...(extra.tags === undefined ? {} : { tags: extra.tags }),
    },
    spec: {
      kind: extra.kind ?? 'kubernetescluster',
      id: extra.id ?? randomUUID(),
      allocations: Object.entries(lines).map(([kind, [committed, reserved]]) => ({ kind, committed, reserved })),
    },
  };
}

describe.each(engines)('identity API compatibility on %s', (engine) => {
  let test: TestLedger;
  let ledger: Ledger;
  let app: FastifyInstance;
  let admin: IdentityClient;
  let service: IdentityClient;
  let anonymous: IdentityClient;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    ledger = test.ledger;
    app = await buildApp({ ledger, adminToken });
    for (const [name, kind] of Object.entries(kinds)) await ledger.putKind(name, kind);
    admin = identityClient({ app }, adminToken);
    service = identityClient({ app }, (await ledger.createToken({ role: 'service' })).token);
    anonymous = identityClient({ app });
  });

  afterAll(async () => {
    await app?.close();
    await test?.close();
  });

  /** A new organization and its projects, with UUID ids, made with the allot library. */
  async function tenant(projectCount = 1): Promise<{ org: string; projects: string[]; project: string }> {
    const org = randomUUID();
    await ledger.putOrganization(org, { displayName: 'Acme' });
    const projects: string[] = [];
    for (let i = 0; i < projectCount; i += 1) {
      const project = randomUUID();
      await ledger.putProject(org, project, { displayName: `Project ${i}` });
      projects.push(project);
    }
    return { org, projects, project: projects[0]! };
  }

  const quotasParams = (org: string) => ({ params: { path: { organizationID: org } } });
  const allocationsParams = (org: string, project: string) => ({ params: { path: { organizationID: org, projectID: project } } });
  const allocationParams = (org: string, project: string, id: string) => ({
    params: { path: { organizationID: org, projectID: project, allocationID: id } },
  });

  /** GET quotas through the compat API (documented 200), keyed by kind. */
  async function compatQuotas(org: string, client: IdentityClient = service): Promise<Record<string, QuotaRead>> {
    const body = expectDocumented('get', quotasPath, await client.GET(quotasPath, quotasParams(org)), 200);
    return Object.fromEntries((body.quotas as QuotaRead[]).map((quota) => [quota.kind, quota]));
  }

  async function create(org: string, project: string, body: AllocationWrite, client: IdentityClient = service): Promise<AllocationRead> {
    const result = await client.POST(allocationsPath, { ...allocationsParams(org, project), body });
    return expectDocumented('post', allocationsPath, result, 201);
  }

  async function read(org: string, project: string, id: string): Promise<AllocationRead> {
    return expectDocumented('get', allocationPath, await service.GET(allocationPath, allocationParams(org, project, id)), 200);
  }

  /**
   * Everything a refused request must leave as it was: the compat quotas, every allocation as
   * the compat API and the ledger show it, the journal, and the stored rows (live or not).
   */
  async function books(org: string, projects: string[]): Promise<unknown> {
    const allocations: Record<string, unknown> = {};
    for (const project of projects) {
      const page = await ledger.listAllocations(org, project, { limit: 1000 });
      const compat = [];
      for (const allocation of page.items) compat.push(await read(org, project, allocation.id));
      allocations[project] = { ledger: page.items, compat };
    }
    const rows = await ledger.store.transaction(
      async (tx) => ({
        allocations: await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM allocations WHERE organization_id = ?', [org]),
        metadata: await tx.get<{ n: number | string }>(
          `SELECT COUNT(*) AS n FROM compat_allocation_metadata m JOIN allocations a ON a.id = m.allocation_id
            WHERE a.organization_id = ?`,
          [org],
        ),
      }),
      { readOnly: true },
    );
    return {
      quotas: await compatQuotas(org),
      ledgerQuotas: await ledger.getQuotas(org),
      allocations,
      journal: await ledger.readJournal(org, 0, 1000),
      rows: { allocations: Number(rows.allocations?.n), metadata: Number(rows.metadata?.n) },
    };
  }

  /** The compat quotas agree with the ledger's, kind by kind. */
  async function expectQuotasAgree(org: string): Promise<void> {
    const compat = await compatQuotas(org);
    const own = await ledger.getQuotas(org);
    expect(Object.keys(compat).sort()).toEqual(own.map((quota) => quota.kind).sort());
    for (const quota of own) {
      const quantity = quota.quantity ?? unlimited;
      expect(compat[quota.kind], quota.kind).toEqual({
        kind: quota.kind,
        quantity,
        used: quota.used,
        free: quantity - quota.used,
        committed: quota.committed,
        reserved: quota.reserved,
        displayName: quota.displayName,
        description: quota.description,
        default: quota.default ?? unlimited,
        format: quota.format,
      });
    }
  }

  describe('GET and PUT /quotas', () => {
    it('lists every kind with the quantity of its quota or default and the kind’s own fields', async () => {
      const { org } = await tenant();
      await ledger.setQuotas(org, [{ kind: 'servers', quantity: 12 }]);
      const quotas = await compatQuotas(org);
      expect(Object.keys(quotas).sort()).toEqual(kindNames);
      for (const name of kindNames) {
        const kind = kinds[name];
        const quantity = name === 'servers' ? 12 : (kind.default ?? unlimited);
        expect(quotas[name], name).toEqual({
          kind: name,
          quantity,
          used: 0,
          free: quantity,
          committed: 0,
          reserved: 0,
          displayName: kind.displayName,
          description: kind.description,
          default: kind.default ?? unlimited,
          format: kind.format,
        });
      }
    });

    it('reports used = committed + reserved, used + free == quantity, every field non-empty and non-negative', async () => {
      const { org, project } = await tenant();
      await create(org, project, allocationBody('a', { clusters: [1, 0], servers: [3, 10] }));
      await create(org, project, allocationBody('b', { servers: [2, 1], memory: [8 * Gi, 4 * Gi], addresses: [2, 0] }));
      const quotas = await compatQuotas(org);
      expect(quotas.clusters).toMatchObject({ quantity: 5, used: 1, committed: 1, reserved: 0, free: 4 });
      expect(quotas.servers).toMatchObject({ quantity: 20, used: 16, committed: 5, reserved: 11, free: 4 });
      expect(quotas.memory).toMatchObject({ quantity: 64 * Gi, used: 12 * Gi, committed: 8 * Gi, reserved: 4 * Gi, free: 52 * Gi });
      expect(quotas.gpus).toMatchObject({ quantity: 0, used: 0, free: 0 });
      expect(quotas.addresses).toMatchObject({ quantity: unlimited, used: 2, free: unlimited - 2 });
      for (const quota of Object.values(quotas)) {
        for (const field of ['kind', 'displayName', 'description', 'format'] as const) {
          expect(quota[field].length, `${quota.kind}.${field}`).toBeGreaterThan(0);
        }
        for (const field of ['quantity', 'used', 'free', 'committed', 'reserved', 'default'] as const) {
          expect(Number.isSafeInteger(quota[field]), `${quota.kind}.${field}`).toBe(true);
          expect(quota[field], `${quota.kind}.${field}`).toBeGreaterThanOrEqual(0);
        }
        expect(quota.used, quota.kind).toBe(quota.committed + quota.reserved);
        expect(quota.used + quota.free, quota.kind).toBe(quota.quantity);
      }
      await expectQuotasAgree(org);
    });

    it('PUT (admin) sets the listed quotas and answers the whole list, as GET and the ledger then show', async () => {
      const { org } = await tenant();
      const result = await admin.PUT(quotasPath, {
        ...quotasParams(org),
        body: { quotas: [{ kind: 'clusters', quantity: 3 }, { kind: 'gpus', quantity: 8 }] },
      });
      const body = expectDocumented('put', quotasPath, result, 200);
      const answered = Object.fromEntries((body.quotas as QuotaRead[]).map((quota) => [quota.kind, quota]));
      expect(Object.keys(answered).sort()).toEqual(kindNames);
      expect(answered.clusters).toMatchObject({ quantity: 3, used: 0, free: 3, default: 5, displayName: 'Clusters' });
      expect(answered.gpus).toMatchObject({ quantity: 8, used: 0, free: 8, default: 0, displayName: 'GPUs' });
      expect(answered.servers).toMatchObject({ quantity: 20, free: 20 });
      expect(await compatQuotas(org)).toEqual(answered);
      const own = Object.fromEntries((await ledger.getQuotas(org)).map((quota) => [quota.kind, quota]));
      expect(own.clusters).toMatchObject({ quantity: 3, source: 'quota' });
      expect(own.gpus).toMatchObject({ quantity: 8, source: 'quota' });
      expect(own.servers).toMatchObject({ quantity: 20, source: 'default' });
      await expectQuotasAgree(org);
    });

    it('PUT refuses bodies the document or allot rejects (400), a non-admin token (403) and an unknown organization (403)', async () => {
      const { org, project } = await tenant();
      await create(org, project, allocationBody('a', { clusters: [2, 0] }));
      const before = await books(org, [project]);
      const invalidByDocument: unknown[] = [{}, { quotas: [{ kind: 'clusters' }] }, { quotas: [{ quantity: 1 }] }, { quotas: [{ kind: 'clusters', quantity: 1.5 }] }];
      for (const body of invalidByDocument) {
        expect(schemaErrors(serverSchema('quotasWrite'), body), JSON.stringify(body)).not.toBe('');
        const result = await admin.PUT(quotasPath, { ...quotasParams(org), body: body as never });
        expectError('put', quotasPath, result, 400, 'invalid_request');
      }
      for (const body of [{ quotas: [{ kind: 'clusters', quantity: -1 }] }, { quotas: [{ kind: 'no-such-kind', quantity: 1 }] }]) {
        const result = await admin.PUT(quotasPath, { ...quotasParams(org), body });
        expectError('put', quotasPath, result, 400, 'invalid_request');
      }
      const byService = await service.PUT(quotasPath, { ...quotasParams(org), body: { quotas: [{ kind: 'clusters', quantity: 100 }] } });
      expectError('put', quotasPath, byService, 403, 'forbidden');
      expect(await books(org, [project])).toEqual(before);

      const unknown = randomUUID();
      const result = await admin.PUT(quotasPath, { ...quotasParams(unknown), body: { quotas: [{ kind: 'clusters', quantity: 1 }] } });
      expectError('put', quotasPath, result, 403, 'forbidden');
      await expect(ledger.getOrganization(unknown)).rejects.toMatchObject({ code: 'not-found' });
    });

    it('GET for an organization allot does not know is 403 forbidden (the document lists no 404)', async () => {
      const result = await service.GET(quotasPath, quotasParams(randomUUID()));
      expectError('get', quotasPath, result, 403, 'forbidden');
      const asAdmin = await admin.GET(quotasPath, quotasParams(randomUUID()));
      expectError('get', quotasPath, asAdmin, 403, 'forbidden');
    });
  });

  describe('allocations', () => {
    it('POST creates: 201 allocationRead, metadata round-trips, ids and times present, valid statuses', async () => {
      const { org, project } = await tenant();
      const tags = [{ name: 'team', value: 'platform' }, { name: 'env', value: 'prod' }];
      const body = allocationBody('cluster-a', { servers: [3, 10], clusters: [1, 0] }, { description: 'A Kubernetes cluster', tags });
      expect(schemaErrors(serverSchema('allocationWrite'), body)).toBe('');
      const startedMs = Date.now();
      const created = await create(org, project, body);
      expect(created.metadata).toMatchObject({ name: 'cluster-a', description: 'A Kubernetes cluster', tags, organizationId: org, projectId: project });
      expect(created.metadata.id).toMatch(uuidPattern);
      const createdMs = Date.parse(created.metadata.creationTime);
      expect(createdMs).toBeGreaterThanOrEqual(startedMs - 5_000);
      expect(createdMs).toBeLessThanOrEqual(Date.now() + 5_000);
      expect(commonEnum('resourceProvisioningStatus')).toContain(created.metadata.provisioningStatus);
      expect(commonEnum('resourceHealthStatus')).toContain(created.metadata.healthStatus);
      expect(specOf(created.spec)).toEqual(specOf(body.spec));

      // GET answers the same allocation.
      expect(await read(org, project, created.metadata.id)).toEqual(created);

      // The quotas moved by exactly what it takes.
      const quotas = await compatQuotas(org);
      expect(quotas.clusters).toMatchObject({ used: 1, committed: 1, reserved: 0, free: 4 });
      expect(quotas.servers).toMatchObject({ used: 13, committed: 3, reserved: 10, free: 7 });
      expect(quotas.memory).toMatchObject({ used: 0, free: 64 * Gi });

      // allot's own view: the same allocation, resource and lines.
      const own = await ledger.getAllocation(org, project, created.metadata.id);
      expect(own.resource).toEqual({ kind: body.spec.kind, id: body.spec.id });
      expect(own.allocations).toEqual(byKind(body.spec.allocations));
      expect((await ledger.listAllocations(org, project)).items.map((a) => a.id)).toEqual([created.metadata.id]);
      await expectQuotasAgree(org);
    });

    it('ids in upper case name the same tenants and allocation (a UUID has no case); an empty description round-trips', async () => {
      const { org, project } = await tenant();
      const body = allocationBody('cluster-b', { servers: [1, 0] }, { description: '' });
      const created = await create(org.toUpperCase(), project.toUpperCase(), body);
      expect(created.metadata).toMatchObject({ organizationId: org, projectId: project, description: '' });
      expect(await read(org.toUpperCase(), project.toUpperCase(), created.metadata.id.toUpperCase())).toEqual(created);
      expect((await compatQuotas(org.toUpperCase())).servers).toMatchObject({ used: 1, committed: 1 });
      expect((await ledger.listAllocations(org, project)).items.map((a) => a.id)).toEqual([created.metadata.id]);
    });

    it('PUT replaces spec and metadata: same id and creation time, old lines freed, omitted metadata gone', async () => {
      const { org, project } = await tenant();
      const first = allocationBody('cluster-a', { clusters: [1, 0], servers: [3, 10] }, {
        description: 'before',
        tags: [{ name: 'env', value: 'prod' }],
      });
      const created = await create(org, project, first);
      const replacement: AllocationWrite = {
        metadata: { name: 'cluster-a-resized', tags: [{ name: 'env', value: 'staging' }, { name: 'size', value: 'l' }] },
        spec: {
          kind: first.spec.kind,
          id: first.spec.id,
          allocations: [
            { kind: 'servers', committed: 5, reserved: 2 },
            { kind: 'memory', committed: 2 * Gi, reserved: 0 },
          ],
        },
      };
      const result = await service.PUT(allocationPath, { ...allocationParams(org, project, created.metadata.id), body: replacement });
      const replaced: AllocationRead = expectDocumented('put', allocationPath, result, 200);
      expect(replaced.metadata).toMatchObject({
        id: created.metadata.id,
        name: 'cluster-a-resized',
        tags: replacement.metadata.tags,
        organizationId: org,
        projectId: project,
        creationTime: created.metadata.creationTime,
      });
      expect(replaced.metadata.description).toBeUndefined();
      expect(Date.parse(replaced.metadata.modifiedTime!)).toBeGreaterThanOrEqual(Date.parse(created.metadata.creationTime));
      expect(specOf(replaced.spec)).toEqual(specOf(replacement.spec));
      expect(await read(org, project, created.metadata.id)).toEqual(replaced);

      const quotas = await compatQuotas(org);
      expect(quotas.clusters).toMatchObject({ used: 0, committed: 0, free: 5 });
      expect(quotas.servers).toMatchObject({ used: 7, committed: 5, reserved: 2, free: 13 });
      expect(quotas.memory).toMatchObject({ used: 2 * Gi, committed: 2 * Gi, free: 62 * Gi });
      expect((await ledger.getAllocation(org, project, created.metadata.id)).allocations).toEqual(byKind(replacement.spec.allocations));
      await expectQuotasAgree(org);
    });

    it('PUT over quota is 403 forbidden naming the kind, the total and the limit, and changes nothing', async () => {
      const { org, project } = await tenant();
      await ledger.setQuotas(org, [{ kind: 'servers', quantity: 10 }]);
      const a = await create(org, project, allocationBody('a', { servers: [4, 0] }, { description: 'kept' }));
      await create(org, project, allocationBody('b', { servers: [3, 0] }));
      const before = await books(org, [project]);
      const result = await service.PUT(allocationPath, {
        ...allocationParams(org, project, a.metadata.id),
        body: allocationBody('a-renamed', { servers: [6, 2] }, { id: a.spec.id }),
      });
      const error = expectError('put', allocationPath, result, 403, 'forbidden');
      expect(error.error_description).toContain('servers');
      expect(error.error_description).toMatch(numberIn(11)); // 7 - 4 + 8
      expect(error.error_description).toMatch(numberIn(10));
      expect(await books(org, [project])).toEqual(before);
      expect((await read(org, project, a.metadata.id)).metadata).toMatchObject({ name: 'a', description: 'kept' });
    });

    it('DELETE answers 202 with no body, then GET, PUT and DELETE answer 404; the quota is freed', async () => {
      const { org, project } = await tenant();
      const body = allocationBody('doomed', { clusters: [2, 1] });
      const created = await create(org, project, body);
      expect((await compatQuotas(org)).clusters).toMatchObject({ used: 3 });
      const params = allocationParams(org, project, created.metadata.id);

      expectDocumented('delete', allocationPath, await service.DELETE(allocationPath, params), 202);
      expect((await compatQuotas(org)).clusters).toMatchObject({ used: 0, committed: 0, reserved: 0, free: 5 });
      expectError('get', allocationPath, await service.GET(allocationPath, params), 404, 'not_found');
      expectError('delete', allocationPath, await service.DELETE(allocationPath, params), 404, 'not_found');
      expectError('put', allocationPath, await service.PUT(allocationPath, { ...params, body }), 404, 'not_found');
      expect((await ledger.listAllocations(org, project)).items).toEqual([]);
      await expect(ledger.getAllocation(org, project, created.metadata.id)).rejects.toMatchObject({ code: 'not-found' });
      expect((await compatQuotas(org)).clusters).toMatchObject({ used: 0 });

      // The resource is free again: a new allocation for it is created, under a new id.
      const again = await create(org, project, body);
      expect(again.metadata.id).not.toBe(created.metadata.id);
      await expectQuotasAgree(org);
    });

    it('a second allocation for the same spec.kind + spec.id is 409 conflict, and nothing else changes', async () => {
      const { org, project } = await tenant();
      const resource = randomUUID();
      const first = await create(org, project, allocationBody('first', { servers: [2, 0] }, { kind: 'server', id: resource }));
      const other = await create(org, project, allocationBody('other', { servers: [1, 0] }, { kind: 'server', id: randomUUID() }));
      const before = await books(org, [project]);

      const duplicate = await service.POST(allocationsPath, {
        ...allocationsParams(org, project),
        body: allocationBody('second', { servers: [1, 0], clusters: [1, 0] }, { kind: 'server', id: resource }),
      });
      expectError('post', allocationsPath, duplicate, 409, 'conflict');
      expect(await books(org, [project])).toEqual(before);

      // PUT that would move another allocation onto the same resource: 409 too.
      const takeover = await service.PUT(allocationPath, {
        ...allocationParams(org, project, other.metadata.id),
        body: allocationBody('other', { servers: [1, 0] }, { kind: 'server', id: resource }),
      });
      expectError('put', allocationPath, takeover, 409, 'conflict');
      expect(await books(org, [project])).toEqual(before);
      expect((await read(org, project, first.metadata.id)).spec.id).toBe(resource);

      // The same id under another spec.kind is another resource.
      const sameIdOtherKind = await create(org, project, allocationBody('volume', { servers: [1, 0] }, { kind: 'volume', id: resource }));
      expect(sameIdOtherKind.spec).toMatchObject({ kind: 'volume', id: resource });
      expect((await ledger.listAllocations(org, project)).items).toHaveLength(3);
      await expectQuotasAgree(org);
    });

    it('POST over quota is 403 forbidden naming the kind, the total and the limit, and persists nothing', async () => {
      const { org, project } = await tenant();
      expectDocumented(
        'put',
        quotasPath,
        await admin.PUT(quotasPath, { ...quotasParams(org), body: { quotas: [{ kind: 'clusters', quantity: 7 }] } }),
        200,
      );
      await create(org, project, allocationBody('a', { clusters: [5, 0] }));
      const before = await books(org, [project]);
      const refused = allocationBody('b', { clusters: [3, 1] }, { description: 'refused', tags: [{ name: 'x', value: 'y' }] });
      const result = await service.POST(allocationsPath, { ...allocationsParams(org, project), body: refused });
      const error = expectError('post', allocationsPath, result, 403, 'forbidden');
      expect(error.error_description).toContain('clusters');
      expect(error.error_description).toMatch(numberIn(9)); // 5 + 3 + 1
      expect(error.error_description).toMatch(numberIn(7));
      expect(await books(org, [project])).toEqual(before);

      // Several kinds, one over: refused as a whole, naming the kind that is over.
      const mixed = await service.POST(allocationsPath, {
        ...allocationsParams(org, project),
        body: allocationBody('c', { clusters: [1, 0], servers: [15, 6] }),
      });
      const mixedError = expectError('post', allocationsPath, mixed, 403, 'forbidden');
      expect(mixedError.error_description).toContain('servers');
      expect(mixedError.error_description).toMatch(numberIn(21));
      expect(mixedError.error_description).toMatch(numberIn(20));
      expect(await books(org, [project])).toEqual(before);

      // Nothing of the refused create is left behind: the same resource fits when it is smaller.
      const fits = await create(org, project, { ...refused, spec: { ...refused.spec, allocations: [{ kind: 'clusters', committed: 2, reserved: 0 }] } });
      expect(fits.metadata).toMatchObject({ name: 'b', description: 'refused' });
      expect((await compatQuotas(org)).clusters).toMatchObject({ quantity: 7, used: 7, free: 0 });
    });

    it('an organization over quota in one kind can still change the others', async () => {
      const { org, project } = await tenant();
      const a = await create(org, project, allocationBody('a', { clusters: [3, 0], servers: [2, 0] }));
      // Cut below usage, as the original allows: the organization is now over in clusters.
      const cut = await admin.PUT(quotasPath, { ...quotasParams(org), body: { quotas: [{ kind: 'clusters', quantity: 1 }] } });
      const cutBody = expectDocumented('put', quotasPath, cut, 200);
      const clusters = (cutBody.quotas as QuotaRead[]).find((quota) => quota.kind === 'clusters')!;
      expect(clusters).toMatchObject({ quantity: 1, used: 3 });
      expect(clusters.used + clusters.free).toBe(clusters.quantity);

      const c = await create(org, project, allocationBody('c', { servers: [4, 0] }));
      const aParams = allocationParams(org, project, a.metadata.id);
      // Clusters unchanged, servers up: allowed.
      const raised = await service.PUT(allocationPath, { ...aParams, body: allocationBody('a', { clusters: [3, 0], servers: [6, 0] }, { id: a.spec.id }) });
      expectDocumented('put', allocationPath, raised, 200);
      // Clusters down (still over): allowed.
      const lowered = await service.PUT(allocationPath, { ...aParams, body: allocationBody('a', { clusters: [2, 0], servers: [6, 0] }, { id: a.spec.id }) });
      expectDocumented('put', allocationPath, lowered, 200);
      let quotas = await compatQuotas(org);
      expect(quotas.clusters).toMatchObject({ quantity: 1, used: 2, free: -1 });
      expect(quotas.servers).toMatchObject({ quantity: 20, used: 10, free: 10 });

      // More clusters: refused, in a create and in a replace.
      const before = await books(org, [project]);
      const more = await service.POST(allocationsPath, { ...allocationsParams(org, project), body: allocationBody('d', { clusters: [1, 0] }) });
      const moreError = expectError('post', allocationsPath, more, 403, 'forbidden');
      expect(moreError.error_description).toContain('clusters');
      expect(moreError.error_description).toMatch(numberIn(3));
      expect(moreError.error_description).toMatch(numberIn(1));
      const back = await service.PUT(allocationPath, { ...aParams, body: allocationBody('a', { clusters: [3, 0], servers: [6, 0] }, { id: a.spec.id }) });
      expectError('put', allocationPath, back, 403, 'forbidden');
      expect(await books(org, [project])).toEqual(before);

      expectDocumented('delete', allocationPath, await service.DELETE(allocationPath, allocationParams(org, project, c.metadata.id)), 202);
      quotas = await compatQuotas(org);
      expect(quotas.servers).toMatchObject({ used: 6, free: 14 });
      for (const quota of Object.values(quotas)) expect(quota.used + quota.free, quota.kind).toBe(quota.quantity);
      await expectQuotasAgree(org);
    });

    it('POST and PUT refuse invalid bodies with 400 invalid_request and change nothing', async () => {
      const { org, project } = await tenant();
      const existing = await create(org, project, allocationBody('existing', { servers: [1, 0] }));
      const valid = allocationBody('valid', { servers: [1, 0] });
      const invalidByDocument: Record<string, unknown> = {
        'missing spec': { metadata: valid.metadata },
        'missing metadata': { spec: valid.spec },
        'metadata name not a label value': { ...valid, metadata: { name: 'Not A Label!' } },
        'metadata name starting with a dash': { ...valid, metadata: { name: '-dash' } },
        'missing metadata name': { ...valid, metadata: { description: 'x' } },
        'spec without allocations': { ...valid, spec: { kind: 'server', id: 'x' } },
        'spec without id': { ...valid, spec: { kind: 'server', allocations: [] } },
        'line without reserved': { ...valid, spec: { ...valid.spec, allocations: [{ kind: 'servers', committed: 1 }] } },
        'line with a fractional committed': { ...valid, spec: { ...valid.spec, allocations: [{ kind: 'servers', committed: 1.5, reserved: 0 }] } },
        'tag without a value': { ...valid, metadata: { name: 'valid', tags: [{ name: 'team' }] } },
      };
      // Not refused by the document's schema (it sets no minimum), but by the issue and allot.
      const invalidByRules: Record<string, unknown> = {
        'negative committed': { ...valid, spec: { ...valid.spec, allocations: [{ kind: 'servers', committed: -1, reserved: 0 }] } },
        'negative reserved': { ...valid, spec: { ...valid.spec, allocations: [{ kind: 'servers', committed: 1, reserved: -2 }] } },
        'unknown resource kind': { ...valid, spec: { ...valid.spec, allocations: [{ kind: 'no-such-kind', committed: 1, reserved: 0 }] } },
      };
      for (const [name, body] of Object.entries(invalidByDocument)) {
        expect(schemaErrors(serverSchema('allocationWrite'), body), `${name} should be invalid by the document`).not.toBe('');
      }
      const before = await books(org, [project]);
      for (const [name, body] of Object.entries({ ...invalidByDocument, ...invalidByRules })) {
        const posted = await service.POST(allocationsPath, { ...allocationsParams(org, project), body: body as never });
        expect(posted.response.status, `POST ${name}`).toBe(400);
        expectError('post', allocationsPath, posted, 400, 'invalid_request');
        const put = await service.PUT(allocationPath, { ...allocationParams(org, project, existing.metadata.id), body: body as never });
        expect(put.response.status, `PUT ${name}`).toBe(400);
        expectError('put', allocationPath, put, 400, 'invalid_request');
      }
      // Not JSON at all.
      const truncated = await service.POST(allocationsPath, {
        ...allocationsParams(org, project),
        body: valid,
        bodySerializer: () => '{"metadata":',
      });
      expectError('post', allocationsPath, truncated, 400, 'invalid_request');
      expect(await books(org, [project])).toEqual(before);
    });

    it('ids that are not UUIDs are 400 invalid_request on every path, even ones naming allot tenants', async () => {
      const { org, project } = await tenant();
      const existing = await create(org, project, allocationBody('existing', { servers: [1, 0] }));
      // allot ids need not be UUIDs; the document's paths take only UUIDs.
      await ledger.putOrganization('not-a-uuid', {});
      await ledger.putProject('not-a-uuid', 'web', {});
      const body = allocationBody('x', { servers: [1, 0] });
      const before = await books(org, [project]);
      // The issue asks for 400 (as the original's generated server answers a path parameter it
      // cannot parse); the document lists no 400 for GET quotas or GET/DELETE an allocation.
      const outsideDocument = { outsideDocument: true };
      expectError('get', quotasPath, await admin.GET(quotasPath, quotasParams('not-a-uuid')), 400, 'invalid_request', outsideDocument);
      expectError(
        'put',
        quotasPath,
        await admin.PUT(quotasPath, { ...quotasParams('not-a-uuid'), body: { quotas: [{ kind: 'clusters', quantity: 1 }] } }),
        400,
        'invalid_request',
      );
      for (const [organizationID, projectID] of [['not-a-uuid', 'web'], [org, 'web'], ['not-a-uuid', project]] as const) {
        const result = await service.POST(allocationsPath, { ...allocationsParams(organizationID, projectID), body });
        expectError('post', allocationsPath, result, 400, 'invalid_request');
      }
      for (const [organizationID, projectID, allocationID] of [
        [org, project, '123'],
        [org, 'web', existing.metadata.id],
        ['not-a-uuid', project, existing.metadata.id],
      ] as const) {
        const params = allocationParams(organizationID, projectID, allocationID);
        expectError('get', allocationPath, await service.GET(allocationPath, params), 400, 'invalid_request', outsideDocument);
        expectError('put', allocationPath, await service.PUT(allocationPath, { ...params, body }), 400, 'invalid_request');
        expectError('delete', allocationPath, await service.DELETE(allocationPath, params), 400, 'invalid_request', outsideDocument);
      }
      expect(await books(org, [project])).toEqual(before);
      expect((await ledger.getQuotas('not-a-uuid')).find((quota) => quota.kind === 'clusters')).toMatchObject({ quantity: 5, source: 'default' });
      expect((await ledger.listAllocations('not-a-uuid', 'web')).items).toEqual([]);
    });

    it('unknown organizations and projects are 403 where the document lists no 404, unknown allocations 404', async () => {
      const { org, project, projects } = await tenant(2);
      const sibling = projects[1]!;
      const elsewhere = await tenant();
      const existing = await create(org, project, allocationBody('existing', { servers: [1, 0] }));
      const body = allocationBody('x', { servers: [1, 0] });
      const before = await books(org, projects);
      const elsewhereBefore = await books(elsewhere.org, elsewhere.projects);
      for (const [organizationID, projectID] of [[randomUUID(), randomUUID()], [org, randomUUID()]] as const) {
        const result = await service.POST(allocationsPath, { ...allocationsParams(organizationID, projectID), body });
        expectError('post', allocationsPath, result, 403, 'forbidden');
      }
      for (const [organizationID, projectID, allocationID] of [
        [org, project, randomUUID()],
        [org, randomUUID(), existing.metadata.id],
        [randomUUID(), project, existing.metadata.id],
        // An allocation is found only under its own organization and project.
        [org, sibling, existing.metadata.id],
        [elsewhere.org, elsewhere.project, existing.metadata.id],
      ] as const) {
        const params = allocationParams(organizationID, projectID, allocationID);
        expectError('get', allocationPath, await service.GET(allocationPath, params), 404, 'not_found');
        expectError('put', allocationPath, await service.PUT(allocationPath, { ...params, body }), 404, 'not_found');
        expectError('delete', allocationPath, await service.DELETE(allocationPath, params), 404, 'not_found');
      }
      expect(await books(org, projects)).toEqual(before);
      expect(await books(elsewhere.org, elsewhere.projects)).toEqual(elsewhereBefore);
    });

    it('twenty concurrent creates of 1 against a quota of 10: exactly 10 are created', async () => {
      const { org, project } = await tenant();
      expectDocumented(
        'put',
        quotasPath,
        await admin.PUT(quotasPath, { ...quotasParams(org), body: { quotas: [{ kind: 'gpus', quantity: 10 }] } }),
        200,
      );
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          service.POST(allocationsPath, {
            ...allocationsParams(org, project),
            body: allocationBody(`server-${i}`, { gpus: [1, 0] }, { kind: 'server', id: `server-${i}` }),
          }),
        ),
      );
      const created = results.filter((result) => result.response.status === 201);
      const refused = results.filter((result) => result.response.status !== 201);
      expect(created).toHaveLength(10);
      expect(refused).toHaveLength(10);
      const ids = created.map((result) => expectDocumented('post', allocationsPath, result, 201).metadata.id as string);
      expect(new Set(ids).size).toBe(10);
      for (const result of refused) {
        const error = expectError('post', allocationsPath, result, 403, 'forbidden');
        expect(error.error_description).toContain('gpus');
        expect(error.error_description).toMatch(numberIn(11));
        expect(error.error_description).toMatch(numberIn(10));
      }
      expect((await compatQuotas(org)).gpus).toMatchObject({ quantity: 10, used: 10, committed: 10, free: 0 });
      expect((await ledger.listAllocations(org, project, { limit: 1000 })).items.map((a) => a.id).sort()).toEqual([...ids].sort());
      expect(await ledger.verifyCounters()).toEqual([]);
      await expectQuotasAgree(org);
    });
  });

  describe('authentication and authorization', () => {
    it('no token, or a token allot did not issue, is 401 access_denied on every path and method', async () => {
      const { org, project } = await tenant();
      const existing = await create(org, project, allocationBody('existing', { servers: [1, 0] }));
      const before = await books(org, [project]);
      const body = allocationBody('x', { servers: [1, 0] });
      const params = allocationParams(org, project, existing.metadata.id);
      for (const client of [anonymous, identityClient({ app }, 'allot_not-a-token')]) {
        expectError('get', quotasPath, await client.GET(quotasPath, quotasParams(org)), 401, 'access_denied');
        expectError(
          'put',
          quotasPath,
          await client.PUT(quotasPath, { ...quotasParams(org), body: { quotas: [{ kind: 'clusters', quantity: 1 }] } }),
          401,
          'access_denied',
        );
        expectError('post', allocationsPath, await client.POST(allocationsPath, { ...allocationsParams(org, project), body }), 401, 'access_denied');
        expectError('get', allocationPath, await client.GET(allocationPath, params), 401, 'access_denied');
        expectError('put', allocationPath, await client.PUT(allocationPath, { ...params, body }), 401, 'access_denied');
        expectError('delete', allocationPath, await client.DELETE(allocationPath, params), 401, 'access_denied');
      }
      expect(await books(org, [project])).toEqual(before);
    });

    it('a reader may read but not write (403 forbidden); a service may not set quotas; other organizations are hidden', async () => {
      const { org, project } = await tenant();
      const existing = await create(org, project, allocationBody('existing', { servers: [1, 0] }));
      const reader = identityClient({ app }, (await ledger.createToken({ role: 'reader', organization: org })).token);
      const before = await books(org, [project]);
      const params = allocationParams(org, project, existing.metadata.id);

      expect(expectDocumented('get', quotasPath, await reader.GET(quotasPath, quotasParams(org)), 200)).toEqual(
        expectDocumented('get', quotasPath, await admin.GET(quotasPath, quotasParams(org)), 200),
      );
      expect(expectDocumented('get', allocationPath, await reader.GET(allocationPath, params), 200)).toEqual(existing);

      const posted = await reader.POST(allocationsPath, { ...allocationsParams(org, project), body: allocationBody('x', { servers: [1, 0] }) });
      expectError('post', allocationsPath, posted, 403, 'forbidden');
      const put = await reader.PUT(allocationPath, { ...params, body: allocationBody('x', { servers: [2, 0] }, { id: existing.spec.id }) });
      expectError('put', allocationPath, put, 403, 'forbidden');
      expectError('delete', allocationPath, await reader.DELETE(allocationPath, params), 403, 'forbidden');
      const quotas = await reader.PUT(quotasPath, { ...quotasParams(org), body: { quotas: [{ kind: 'servers', quantity: 100 }] } });
      expectError('put', quotasPath, quotas, 403, 'forbidden');
      expect(await books(org, [project])).toEqual(before);

      // A reader of another organization sees nothing of this one.
      const other = await tenant();
      const outsider = identityClient({ app }, (await ledger.createToken({ role: 'reader', organization: other.org })).token);
      expectError('get', quotasPath, await outsider.GET(quotasPath, quotasParams(org)), 403, 'forbidden');
      expectError('get', allocationPath, await outsider.GET(allocationPath, params), 404, 'not_found');
    });
  });

  describe("allot's own view", () => {
    it('agrees with the compat API: tenants from /v1, allocations from both APIs, quotas and allocations alike', async () => {
      const org = randomUUID();
      const projects = [randomUUID(), randomUUID()];
      const v1 = async (method: 'PUT' | 'POST' | 'GET', url: string, body?: unknown) =>
        app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        });
      expect((await v1('PUT', `/v1/organizations/${org}`, { displayName: 'Via v1' })).statusCode).toBe(201);
      for (const project of projects) expect((await v1('PUT', `/v1/organizations/${org}/projects/${project}`, {})).statusCode).toBe(201);
      expect(
        (await v1('PUT', `/v1/organizations/${org}/quotas`, { quotas: [{ kind: 'servers', quantity: 30 }, { kind: 'gpus', quantity: 4 }] })).statusCode,
      ).toBe(200);

      const a = await create(org, projects[0]!, allocationBody('a', { servers: [5, 5], gpus: [2, 0] }));
      const b = await create(org, projects[1]!, allocationBody('b', { clusters: [1, 0], memory: [16 * Gi, 0] }));
      const c = await create(org, projects[1]!, allocationBody('c', { servers: [1, 0] }));
      expectDocumented(
        'put',
        allocationPath,
        await service.PUT(allocationPath, {
          ...allocationParams(org, projects[0]!, a.metadata.id),
          body: allocationBody('a', { servers: [7, 0], gpus: [1, 1] }, { id: a.spec.id }),
        }),
        200,
      );
      expectDocumented('delete', allocationPath, await service.DELETE(allocationPath, allocationParams(org, projects[1]!, c.metadata.id)), 202);
      // One made through allot's own API is served by the compat API too, valid by the document.
      const made = await v1('POST', `/v1/organizations/${org}/projects/${projects[1]}/allocations`, {
        resource: { kind: 'server', id: 'made-in-v1' },
        allocations: [{ kind: 'servers', committed: 2 }],
      });
      expect(made.statusCode).toBe(201);
      const viaV1 = await read(org, projects[1]!, made.json().id);
      expect(viaV1.metadata).toMatchObject({ id: made.json().id, organizationId: org, projectId: projects[1] });
      expect(viaV1.spec).toEqual({ kind: 'server', id: 'made-in-v1', allocations: [{ kind: 'servers', committed: 2, reserved: 0 }] });

      // A pending hold (allot's own API) counts as used here too, as it does in allot's decisions.
      const hold = await v1('POST', `/v1/organizations/${org}/projects/${projects[0]}/holds`, {
        resource: { kind: 'server', id: 'held-in-v1' },
        allocations: [{ kind: 'servers', committed: 3 }],
        ttlSeconds: 600,
      });
      expect(hold.statusCode, hold.body).toBe(201);

      // Quotas: compat == ledger == /v1, kind by kind.
      await expectQuotasAgree(org);
      const compat = await compatQuotas(org);
      expect(compat.servers).toMatchObject({ quantity: 30, used: 12, committed: 9, reserved: 0, free: 18 });
      for (const quota of Object.values(compat)) expect(quota.used + quota.free, quota.kind).toBe(quota.quantity);
      const overHeld = await service.POST(allocationsPath, {
        ...allocationsParams(org, projects[0]!),
        body: allocationBody('over', { servers: [19, 0] }),
      });
      const overHeldError = expectError('post', allocationsPath, overHeld, 403, 'forbidden');
      expect(overHeldError.error_description).toMatch(numberIn(31));
      expect(overHeldError.error_description).toMatch(numberIn(30));
      expect(compat.gpus).toMatchObject({ quantity: 4, used: 2, committed: 1, reserved: 1, free: 2 });
      expect(compat.clusters).toMatchObject({ quantity: 5, used: 1, free: 4 });
      expect(compat.memory).toMatchObject({ used: 16 * Gi });
      const overV1 = (await v1('GET', `/v1/organizations/${org}/quotas`)).json().quotas as { kind: string; quantity: number | null; used: number; committed: number; reserved: number }[];
      for (const quota of overV1) {
        expect(compat[quota.kind], quota.kind).toMatchObject({
          quantity: quota.quantity ?? unlimited,
          used: quota.used,
          committed: quota.committed,
          reserved: quota.reserved,
        });
      }

      // Allocations: every live one in the ledger is the one the compat API answers, and no other.
      const expected = {
        [projects[0]!]: [a.metadata.id],
        [projects[1]!]: [b.metadata.id, made.json().id as string].sort(),
      };
      for (const project of projects) {
        const own = (await ledger.listAllocations(org, project, { limit: 1000 })).items;
        expect(own.map((allocation) => allocation.id).sort()).toEqual(expected[project]);
        for (const allocation of own) {
          const served = await read(org, project, allocation.id);
          expect(served.metadata).toMatchObject({ id: allocation.id, organizationId: org, projectId: project, creationTime: allocation.createdAt });
          expect(specOf(served.spec)).toEqual({ kind: allocation.resource.kind, id: allocation.resource.id, allocations: byKind(allocation.allocations) });
        }
        const listed = await v1('GET', `/v1/organizations/${org}/projects/${project}/allocations?limit=1000`);
        expect((listed.json().items as { id: string }[]).map((item) => item.id).sort()).toEqual(expected[project]);
      }
      expect(await ledger.verifyCounters()).toEqual([]);
    });
  });
});

describe.skipIf(!engines.includes('postgres'))('identity API across two allot serve processes on PostgreSQL', () => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    // One first, so the migrations are applied once; the second finds them.
    servers = [await startServer(database.url)];
    servers.push(await startServer(database.url));
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await database?.drop();
  });

  it('twenty concurrent creates of 1 against a quota of 10, over both processes: exactly 10 are created', async () => {
    const [a, b] = servers.map((server) => server.url) as [string, string];
    const org = randomUUID();
    const project = randomUUID();
    expect((await call(a, 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', description: 'Accelerators.', default: 0 })).status).toBe(201);
    expect((await call(b, 'PUT', `/v1/organizations/${org}`, { displayName: 'Acme' })).status).toBe(201);
    expect((await call(a, 'PUT', `/v1/organizations/${org}/projects/${project}`, {})).status).toBe(201);
    const ledger = await openLedger({ db: database.url });
    try {
      const token = (await ledger.createToken({ role: 'service' })).token;
      const setQuota = await identityClient({ baseUrl: b }, testAdminToken).PUT(quotasPath, {
        params: { path: { organizationID: org } },
        body: { quotas: [{ kind: 'gpus', quantity: 10 }] },
      });
      expectDocumented('put', quotasPath, setQuota, 200);
      const clients = [identityClient({ baseUrl: a }, token), identityClient({ baseUrl: b }, token)];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          clients[i % 2]!.POST(allocationsPath, {
            params: { path: { organizationID: org, projectID: project } },
            body: allocationBody(`server-${i}`, { gpus: [1, 0] }, { kind: 'server', id: `server-${i}` }),
          }),
        ),
      );
      const created = results.filter((result) => result.response.status === 201);
      expect(created).toHaveLength(10);
      for (const result of created) expectDocumented('post', allocationsPath, result, 201);
      for (const result of results.filter((r) => r.response.status !== 201)) {
        const error = expectError('post', allocationsPath, result, 403, 'forbidden');
        expect(error.error_description).toContain('gpus');
      }
      // Both processes report the same books, and so does the ledger.
      for (const client of clients) {
        const body = expectDocumented('get', quotasPath, await client.GET(quotasPath, { params: { path: { organizationID: org } } }), 200);
        expect((body.quotas as QuotaRead[]).find((quota) => quota.kind === 'gpus')).toMatchObject({ quantity: 10, used: 10, free: 0 });
      }
      expect((await ledger.listAllocations(org, project, { limit: 1000 })).items).toHaveLength(10);
      expect((await ledger.getQuotas(org)).find((quota) => quota.kind === 'gpus')).toMatchObject({ quantity: 10, used: 10 });
      expect(await ledger.verifyCounters()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
