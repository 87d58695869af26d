// Goal: the service routes (health, OpenAPI, docs) and the catalog routes (resource kinds,
// organizations, projects) answer as documented: 201 on create, 200 on update, reads return
// what was written, and lists page through every item.
// Method: per engine, a fresh ledger and app; an ordered `ApiCase` table sent through
// `app.inject`, then cursor walks with limit=1 over organizations and projects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engines } from '../support/engines.js';
import {
  closeApi,
  getJson,
  openApi,
  runCase,
  send,
  walkPages,
  type ApiCase,
  type ApiHarness,
} from './harness.js';

/** Every /v1 path of the API, with its methods, as the OpenAPI document must list them. */
const v1Paths: Record<string, string[]> = {
  '/v1/resource-kinds': ['get'],
  '/v1/resource-kinds/{kind}': ['get', 'put'],
  '/v1/organizations': ['get'],
  '/v1/whoami': ['get'],
  '/v1/organizations/{organization}/allocations': ['get'],
  '/v1/organizations/{organization}/limits': ['get'],
  '/v1/organizations/{organization}': ['get', 'put'],
  '/v1/organizations/{organization}/projects': ['get'],
  '/v1/organizations/{organization}/projects/{project}': ['delete', 'get', 'put'],
  '/v1/organizations/{organization}/quotas': ['get', 'put'],
  '/v1/organizations/{organization}/projects/{project}/quotas': ['get', 'put'],
  '/v1/organizations/{organization}/projects/{project}/allocations': ['get', 'post'],
  '/v1/organizations/{organization}/projects/{project}/allocations/{id}': ['delete', 'get', 'put'],
  '/v1/organizations/{organization}/projects/{project}/holds': ['get', 'post'],
  '/v1/organizations/{organization}/projects/{project}/holds/{id}': ['get'],
  '/v1/organizations/{organization}/projects/{project}/holds/{id}/confirm': ['post'],
  '/v1/organizations/{organization}/projects/{project}/holds/{id}/release': ['post'],
  '/v1/organizations/{organization}/journal': ['get'],
  '/v1/organizations/{organization}/batch': ['post'],
  '/v1/organizations/{organization}/watch': ['get'],
  '/v1/tokens': ['get', 'post'],
  '/v1/tokens/{id}': ['delete'],
  '/v1/organizations/{organization}/projects/{project}/limits': ['get'],
  '/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}': ['delete', 'get', 'put'],
  '/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}/regions/{region}/usage': ['put'],
  '/v1/regions': ['get'],
  '/v1/regions/{region}': ['get', 'put'],
  '/v1/regions/{region}/hosts/{service}': ['delete', 'put'],
  '/v1/organizations/{organization}/projects/{project}/regions': ['get', 'put'],
  '/v1/organizations/{organization}/history': ['get'],
  '/v1/organizations/{organization}/projects/{project}/limits/{service}/{resourceType}/history': ['get'],
  '/v1/organizations/{organization}/quota-requests': ['get', 'post'],
  '/v1/organizations/{organization}/quota-requests/{id}': ['get'],
  '/v1/organizations/{organization}/quota-requests/{id}/approve': ['post'],
  '/v1/organizations/{organization}/quota-requests/{id}/deny': ['post'],
  '/v1/organizations/{organization}/quota-requests/{id}/cancel': ['post'],
  '/v1/resource-kinds/{kind}/request-policy': ['get', 'put'],
  '/v1/organizations/{organization}/subscriptions': ['get', 'post'],
  '/v1/organizations/{organization}/subscriptions/{id}': ['delete', 'get'],
  '/v1/organizations/{organization}/subscriptions/{id}/resume': ['post'],
  '/v1/subscriptions': ['get', 'post'],
  '/v1/subscriptions/{id}': ['delete', 'get'],
  '/v1/subscriptions/{id}/resume': ['post'],
};

const isoDate = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe.each(engines)('catalog API on %s', (engine) => {
  let api: ApiHarness;
  /** What earlier cases saw, for later cases to compare with. */
  const seen: Record<string, any> = {};

  beforeAll(async () => {
    api = await openApi(engine);
  });
  afterAll(() => closeApi(api));

  it('GET /healthz answers ok without a token', async () => {
    await runCase(api.app, {
      name: 'healthz',
      method: 'GET',
      url: '/healthz',
      noAuth: true,
      status: 200,
      json: (body) => expect(body).toEqual({ status: 'ok' }),
    });
  });

  it('GET /openapi.json is OpenAPI 3.1 and lists every /v1 path with its methods', async () => {
    const response = await send(api.app, { method: 'GET', url: '/openapi.json', noAuth: true });
    expect(response.status).toBe(200);
    expect(String(response.headers['content-type'])).toMatch(/^application\/json/);
    const document = response.json;
    expect(document.openapi).toMatch(/^3\.1\./);
    expect(document.info).toMatchObject({ title: 'allot' });
    const listed = Object.keys(document.paths).filter((path) => path.startsWith('/v1')).sort();
    expect(listed).toEqual(Object.keys(v1Paths).sort());
    for (const [path, methods] of Object.entries(v1Paths)) {
      const operations = Object.keys(document.paths[path]).filter((key) =>
        ['get', 'put', 'post', 'delete', 'patch'].includes(key),
      );
      expect(operations.sort(), path).toEqual(methods);
    }
  });

  it('GET /docs serves the documentation as HTML (following redirects)', async () => {
    let url = '/docs';
    let response = await send(api.app, { method: 'GET', url, noAuth: true });
    for (let hops = 0; hops < 5 && response.status >= 300 && response.status < 400; hops += 1) {
      url = new URL(String(response.headers.location), `http://localhost${url}`).pathname;
      response = await send(api.app, { method: 'GET', url, noAuth: true });
    }
    expect(response.status).toBe(200);
    expect(String(response.headers['content-type'])).toMatch(/^text\/html/);
    expect(response.text).toMatch(/<html/i);
  });

  const cases: ApiCase[] = [
    // Resource kinds
    {
      name: 'PUT a new kind → 201 with every field',
      method: 'PUT',
      url: '/v1/resource-kinds/gpus',
      body: { displayName: 'GPUs', description: 'Graphics cards', default: 8 },
      status: 201,
      json: (body) => {
        expect(body).toEqual({
          name: 'gpus',
          displayName: 'GPUs',
          description: 'Graphics cards',
          default: 8,
          format: 'decimal',
          createdAt: expect.stringMatching(isoDate),
          updatedAt: expect.stringMatching(isoDate),
        });
        seen.gpus = body;
      },
    },
    {
      name: 'PUT the same kind again → 200, updated, createdAt kept',
      method: 'PUT',
      url: '/v1/resource-kinds/gpus',
      body: { displayName: 'GPU cards', description: 'Accelerators', default: '2k' },
      status: 200,
      json: (body) => {
        expect(body).toMatchObject({ name: 'gpus', displayName: 'GPU cards', description: 'Accelerators' });
        expect(body.default).toBe(2000);
        expect(body.createdAt).toBe(seen.gpus.createdAt);
        expect(Date.parse(body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(seen.gpus.updatedAt));
      },
    },
    {
      name: 'PUT a binary kind with a quantity string default → 201, exact integer',
      method: 'PUT',
      url: '/v1/resource-kinds/ram',
      body: { displayName: 'Memory', format: 'binary', default: '1Ti' },
      status: 201,
      json: (body) => expect(body).toMatchObject({ name: 'ram', format: 'binary', default: 1099511627776 }),
    },
    {
      name: 'PUT a kind without default → unlimited (default null)',
      method: 'PUT',
      url: '/v1/resource-kinds/cpu',
      body: { displayName: 'CPU' },
      status: 201,
      json: (body) => expect(body).toMatchObject({ name: 'cpu', default: null, description: '', format: 'decimal' }),
    },
    {
      name: 'GET /v1/resource-kinds lists every kind, by name',
      method: 'GET',
      url: '/v1/resource-kinds',
      status: 200,
      json: (body) => {
        expect(body.items.map((kind: any) => kind.name)).toEqual(['cpu', 'gpus', 'ram']);
        expect(body.items[1]).toMatchObject({ displayName: 'GPU cards', default: 2000 });
      },
    },
    {
      name: 'GET /v1/resource-kinds/{kind} reads one kind',
      method: 'GET',
      url: '/v1/resource-kinds/gpus',
      status: 200,
      json: (body) => expect(body).toMatchObject({ name: 'gpus', displayName: 'GPU cards', default: 2000 }),
    },
    {
      name: 'GET an unknown kind → 404',
      method: 'GET',
      url: '/v1/resource-kinds/tpus',
      status: 404,
      json: (body) => expect(body.type).toBe('/problems/not-found'),
    },
    // Organizations
    {
      name: 'PUT a new organization → 201',
      method: 'PUT',
      url: '/v1/organizations/acme',
      body: { displayName: 'Acme' },
      status: 201,
      json: (body) => {
        expect(body).toEqual({
          id: 'acme',
          displayName: 'Acme',
          createdAt: expect.stringMatching(isoDate),
          updatedAt: expect.stringMatching(isoDate),
        });
        seen.acme = body;
      },
    },
    {
      name: 'PUT the same organization → 200, renamed, createdAt kept',
      method: 'PUT',
      url: '/v1/organizations/acme',
      body: { displayName: 'Acme Corp' },
      status: 200,
      json: (body) => {
        expect(body).toMatchObject({ id: 'acme', displayName: 'Acme Corp', createdAt: seen.acme.createdAt });
      },
    },
    {
      name: 'GET the organization',
      method: 'GET',
      url: '/v1/organizations/acme',
      status: 200,
      json: (body) => expect(body).toMatchObject({ id: 'acme', displayName: 'Acme Corp' }),
    },
    {
      name: 'PUT an organization without displayName → named after its id',
      method: 'PUT',
      url: '/v1/organizations/beta',
      body: {},
      status: 201,
      json: (body) => expect(body).toMatchObject({ id: 'beta', displayName: 'beta' }),
    },
    { name: 'PUT a third organization', method: 'PUT', url: '/v1/organizations/gamma', body: {}, status: 201 },
    { name: 'PUT a fourth organization', method: 'PUT', url: '/v1/organizations/delta', body: {}, status: 201 },
    {
      name: 'GET /v1/organizations lists all, by id, on one page',
      method: 'GET',
      url: '/v1/organizations',
      status: 200,
      json: (body) => {
        expect(body.items.map((org: any) => org.id)).toEqual(['acme', 'beta', 'delta', 'gamma']);
        expect(body.nextCursor).toBeNull();
      },
    },
    {
      name: 'GET /v1/organizations?limit=2 → first page with a cursor',
      method: 'GET',
      url: '/v1/organizations?limit=2',
      status: 200,
      json: (body) => {
        expect(body.items.map((org: any) => org.id)).toEqual(['acme', 'beta']);
        expect(typeof body.nextCursor).toBe('string');
      },
    },
    {
      name: 'GET /v1/organizations with an invalid cursor → 400',
      method: 'GET',
      url: '/v1/organizations?cursor=not-a-cursor',
      status: 400,
      problem: 'invalid-request',
    },
    // Projects
    {
      name: 'PUT a new project → 201',
      method: 'PUT',
      url: '/v1/organizations/acme/projects/web',
      body: { displayName: 'Website' },
      status: 201,
      json: (body) => {
        expect(body).toEqual({
          organization: 'acme',
          id: 'web',
          displayName: 'Website',
          createdAt: expect.stringMatching(isoDate),
          updatedAt: expect.stringMatching(isoDate),
        });
        seen.web = body;
      },
    },
    {
      name: 'PUT the same project → 200, renamed, createdAt kept',
      method: 'PUT',
      url: '/v1/organizations/acme/projects/web',
      body: { displayName: 'Web site' },
      status: 200,
      json: (body) => expect(body).toMatchObject({ displayName: 'Web site', createdAt: seen.web.createdAt }),
    },
    { name: 'PUT project api', method: 'PUT', url: '/v1/organizations/acme/projects/api', body: {}, status: 201 },
    { name: 'PUT project batch', method: 'PUT', url: '/v1/organizations/acme/projects/batch', body: {}, status: 201 },
    {
      name: 'PUT a project of the same id in another organization is another project → 201',
      method: 'PUT',
      url: '/v1/organizations/beta/projects/web',
      body: {},
      status: 201,
      json: (body) => expect(body).toMatchObject({ organization: 'beta', id: 'web', displayName: 'web' }),
    },
    {
      name: 'GET the project',
      method: 'GET',
      url: '/v1/organizations/acme/projects/web',
      status: 200,
      json: (body) => expect(body).toMatchObject({ organization: 'acme', id: 'web', displayName: 'Web site' }),
    },
    {
      name: "GET an organization's projects, by id, only its own",
      method: 'GET',
      url: '/v1/organizations/acme/projects',
      status: 200,
      json: (body) => {
        expect(body.items.map((project: any) => project.id)).toEqual(['api', 'batch', 'web']);
        expect(body.items.every((project: any) => project.organization === 'acme')).toBe(true);
        expect(body.nextCursor).toBeNull();
      },
    },
    {
      name: 'GET projects with an invalid cursor → 400',
      method: 'GET',
      url: '/v1/organizations/acme/projects?cursor=%7B%7D',
      status: 400,
      problem: 'invalid-request',
    },
    {
      name: 'PUT a project in an unknown organization → 404',
      method: 'PUT',
      url: '/v1/organizations/nobody/projects/web',
      body: {},
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'GET projects of an unknown organization → 404',
      method: 'GET',
      url: '/v1/organizations/nobody/projects',
      status: 404,
      problem: 'not-found',
    },
  ];

  for (const apiCase of cases) {
    it(apiCase.name, async () => {
      await runCase(api.app, apiCase);
    });
  }

  it('limit=1 walks every organization once, in order, then nextCursor is null', async () => {
    const all = await getJson(api.app, '/v1/organizations');
    const walk = await walkPages(api.app, '/v1/organizations', 1);
    expect(walk.items).toEqual(all.items);
    expect(walk.pages).toEqual([1, 1, 1, 1]);
  });

  it('limit=1 walks every project of an organization once, in order', async () => {
    const walk = await walkPages(api.app, '/v1/organizations/acme/projects', 1);
    expect(walk.items.map((project) => project.id)).toEqual(['api', 'batch', 'web']);
    expect(walk.pages).toEqual([1, 1, 1]);
  });

  it('limit=1000, the maximum page size, is accepted', async () => {
    const page = await getJson(api.app, '/v1/organizations?limit=1000');
    expect(page.items).toHaveLength(4);
    expect(page.nextCursor).toBeNull();
  });
});
