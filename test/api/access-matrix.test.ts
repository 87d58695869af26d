// Goal: authorization holds for every /v1 route, every role and every kind of tenant. A tenant
// the principal may not see answers 404 exactly as if it did not exist; an action its role
// lacks answers 403; everything else succeeds with the route's own status; nothing foreign
// (another organization's names and ids, or for a project-member its sibling projects') ever
// appears in an answer; a missing, wrong, revoked or expired credential is 401 on every route
// (before any 404/403); and writes record the principal that made them.
// Method: per engine, one ledger on a ManualClock and one app (`buildApp`) driven by
// `app.inject`. Setup makes an own organization (home-org: home-proj, other-proj) and a foreign
// one (foreign-org: foreign-proj), a kind, quotas, and in every project an allocation and a
// pending hold (7-day ttl), plus one API token per principal (`ledger.createToken`). The routes
// come from the app's own /openapi.json (the endless watch stream excluded from the matrix);
// a typed table gives each route its action, its scope and its success status, and the test
// fails if the app serves a route the table does not know (or the table names one it does not
// serve). Expected statuses are computed from two independent tables: what each principal sees
// and what each role may do. Every write case gets a fresh target made through the ledger, so
// no DELETE/confirm/release/PUT disturbs a later case; refused writes must leave their target
// unchanged. GET routes are sent as HEAD too (Fastify serves HEAD for every GET).
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { parseAllowList } from '../../src/webhooks/address.js';
import type { Action, Role } from '../../src/domain/access.js';
import type { Engine } from '../../src/store/store.js';
import { engines, ManualClock, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken, expectProblem, type ApiResponse } from './harness.js';

// Tenants. Distinctive names, so a substring check for a leak means something.
const HOME = 'home-org';
const P1 = 'home-proj';
const P2 = 'other-proj';
const FOREIGN = 'foreign-org';
const Q1 = 'foreign-proj';
const KIND = 'cpu';
// Every project has this limit (fixture); a DELETE of a limit works on a fresh resource type.
const LIMIT_SERVICE = 'compute';
const LIMIT_TYPE = 'instances';
const LIMIT_REGION = 'eu-1';

type Scope = 'global' | 'organization' | 'project';

interface Tenant {
  name: string;
  organization?: string;
  project?: string;
}

const noTenant: Tenant = { name: 'no tenant' };
const tenantsOf: Record<Scope, Tenant[]> = {
  global: [noTenant],
  organization: [
    { name: 'own organization', organization: HOME },
    { name: 'foreign organization', organization: FOREIGN },
  ],
  project: [
    { name: 'own project', organization: HOME, project: P1 },
    { name: 'own organization, other project', organization: HOME, project: P2 },
    { name: 'foreign project', organization: FOREIGN, project: Q1 },
  ],
};

// Principals: one API token each.
const principalNames = ['service-admin', 'org-admin', 'project-member', 'service-org', 'service-all', 'reader'] as const;
type PrincipalName = (typeof principalNames)[number];

/** What a principal sees: every tenant, its organization (all projects), or its organization's org-level routes and its own project. */
type Sight = 'everything' | 'organization' | 'project';

const principals: Record<PrincipalName, { role: Role; organization: string | null; project: string | null; sight: Sight }> = {
  'service-admin': { role: 'service-admin', organization: null, project: null, sight: 'everything' },
  'org-admin': { role: 'org-admin', organization: HOME, project: null, sight: 'organization' },
  'project-member': { role: 'project-member', organization: HOME, project: P1, sight: 'project' },
  'service-org': { role: 'service', organization: HOME, project: null, sight: 'organization' },
  'service-all': { role: 'service', organization: null, project: null, sight: 'everything' },
  reader: { role: 'reader', organization: HOME, project: null, sight: 'organization' },
};

/** What each role may do (the spec, written out here rather than imported). */
const mayDo: Record<Role, readonly Action[]> = {
  'service-admin': ['read', 'read-organization', 'allocate', 'create-project', 'partition', 'report-usage', 'request-quota', 'subscribe', 'administer'],
  'org-admin': ['read', 'read-organization', 'allocate', 'create-project', 'partition', 'request-quota', 'subscribe'],
  'project-member': ['read', 'allocate', 'request-quota'],
  service: ['read', 'read-organization', 'allocate'],
  reader: ['read', 'read-organization'],
};

function sees(name: PrincipalName, tenant: Tenant): boolean {
  const principal = principals[name];
  if (tenant.organization === undefined || principal.sight === 'everything') return true;
  if (tenant.organization !== principal.organization) return false;
  return principal.sight === 'organization' || tenant.project === undefined || tenant.project === principal.project;
}

/** Names and ids a principal must never be shown (empty for those who see everything). */
function forbiddenFor(name: PrincipalName, fixtures: Fixtures): string[] {
  const principal = principals[name];
  if (principal.sight === 'everything') return [];
  const foreign = [FOREIGN, Q1, fixtures[Q1]!.allocation, fixtures[Q1]!.hold];
  return principal.sight === 'project' ? [...foreign, P2, fixtures[P2]!.allocation, fixtures[P2]!.hold] : foreign;
}

// The routes.

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';
type Fixtures = Record<string, { allocation: string; hold: string }>;

interface Context {
  test: TestLedger;
  fixtures: Fixtures;
  /** A fresh number, for unique resource ids. */
  next(): number;
}

/** What a write case works on, made fresh for it, and how to tell it was left alone. */
interface Target {
  id: string;
  /** Fails unless the target is exactly as made (called after a refused request). */
  unchanged?: () => Promise<void>;
  /** The resource the target references (for a PUT body). */
  resource?: { kind: string; id: string };
}

interface RouteSpec {
  action: Action;
  scope: Scope;
  /** 409 only for DELETE of a fixture project: it has allocations, so a permitted delete is refused as not empty. */
  success: 200 | 201 | 204 | 409;
  /** The `{id}` or `{kind}` of the path: a fixture, or a fresh target. */
  target?: (context: Context, tenant: Tenant) => Promise<Target>;
  body?: (context: Context, target: Target | undefined) => unknown;
  /** A query string the route needs (appended to the path). */
  query?: string;
  /** Checks on a successful answer. */
  check?: (body: any, who: { name: PrincipalName; principalId: string; tenant: Tenant }) => void;
  /** After a refused request: what must not have happened. */
  refused?: (context: Context, tenant: Tenant, body: unknown) => Promise<void>;
}

const resourceOf = (context: Context) => ({ kind: 'vm', id: `res-${context.next()}` });
const lines = (committed: number) => [{ kind: KIND, committed }];
const holdTtlSeconds = 7 * 24 * 3600;

const fixtureAllocation = async (context: Context, tenant: Tenant): Promise<Target> => ({
  id: context.fixtures[tenant.project!]!.allocation,
});
const fixtureHold = async (context: Context, tenant: Tenant): Promise<Target> => ({
  id: context.fixtures[tenant.project!]!.hold,
});

const freshAllocation = async (context: Context, tenant: Tenant): Promise<Target> => {
  const { ledger } = context.test;
  const resource = resourceOf(context);
  const made = await ledger.createAllocation(tenant.organization!, tenant.project!, { resource, allocations: lines(1) }, { principal: 'admin' });
  return {
    id: made.id,
    resource,
    unchanged: async () => {
      const now = await ledger.getAllocation(tenant.organization!, tenant.project!, made.id);
      expect(now.generation, `allocation ${made.id} changed by a refused request`).toBe(made.generation);
    },
  };
};

const freshHold = async (context: Context, tenant: Tenant): Promise<Target> => {
  const { ledger } = context.test;
  const made = await ledger.createHold(
    tenant.organization!,
    tenant.project!,
    { resource: resourceOf(context), allocations: lines(1), ttlSeconds: holdTtlSeconds },
    { principal: 'admin' },
  );
  return {
    id: made.id,
    unchanged: async () => {
      const now = await ledger.getHold(tenant.organization!, tenant.project!, made.id);
      expect(now.status, `hold ${made.id} resolved by a refused request`).toBe('pending');
      expect(now.generation).toBe(made.generation);
    },
  };
};

/** Nothing was created for the resource a refused POST named. */
const noAllocationFor = async (context: Context, tenant: Tenant, body: unknown) => {
  const resource = (body as { resource: { kind: string; id: string } }).resource;
  const page = await context.test.ledger.listAllocations(tenant.organization!, tenant.project!, {
    resourceKind: resource.kind,
    resourceId: resource.id,
  });
  expect(page.items, `a refused POST created ${resource.id}`).toEqual([]);
};
const noHoldFor = async (context: Context, tenant: Tenant, body: unknown) => {
  const resource = (body as { resource: { id: string } }).resource;
  const page = await context.test.ledger.listHolds(tenant.organization!, tenant.project!, { limit: 1000 });
  expect(page.items.filter((hold) => hold.resource.id === resource.id), `a refused POST held ${resource.id}`).toEqual([]);
};

/** A subscription made for the case (of `tenant`'s organization, or for every organization). */
const freshSubscription = async (context: Context, tenant: Tenant): Promise<Target> => {
  const { ledger } = context.test;
  const made = await ledger.createSubscription(tenant.organization ?? null, { url: hookUrl, journal: {} }, { principal: 'admin' });
  return {
    id: made.id,
    unchanged: async () => {
      const subscriptions = await ledger.listSubscriptions();
      expect(subscriptions.map((subscription) => subscription.id), `subscription ${made.id} deleted by a refused request`).toContain(made.id);
    },
  };
};
const hookUrl = 'http://127.0.0.1:9/hook';

/** The project of a tenant's organization that requests name: the own project at home. */
const requestProject = (tenant: Tenant) => (tenant.organization === FOREIGN ? Q1 : P1);
const asking = { justification: 'more training runs', contact: 'ml@example.com' };

/** A pending request for a project's cap, of a kind of its own (one open request per kind). */
const freshRequest = async (context: Context, tenant: Tenant): Promise<Target> => {
  const { ledger } = context.test;
  const kind = `req-${context.next()}`;
  await ledger.putKind(kind, { displayName: 'Requested' });
  const made = await ledger.createQuotaRequest(
    tenant.organization!,
    { kind, scope: 'project', project: requestProject(tenant), field: 'cap', preferred: 5, ...asking },
    { principal: 'admin', mayApply: false },
  );
  return {
    id: made.id,
    unchanged: async () => {
      const now = await ledger.getQuotaRequest(tenant.organization!, made.id);
      expect(now.state, `request ${made.id} resolved by a refused request`).toBe('pending');
    },
  };
};

const writtenBy = (field: 'createdBy' | 'updatedBy') => (body: any, who: { principalId: string }) =>
  expect(body[field], `${field} records the principal`).toBe(who.principalId);

const ORG = '/v1/organizations/{organization}';
const PROJECT = `${ORG}/projects/{project}`;

/** The expectations, one per route the app serves (key: `METHOD openapi-path`). */
const routes = {
  // Global routes: no tenant in the path.
  'GET /v1/resource-kinds': { action: 'read', scope: 'global', success: 200 },
  'GET /v1/resource-kinds/{kind}': { action: 'read', scope: 'global', success: 200, target: async () => ({ id: KIND }) },
  'PUT /v1/resource-kinds/{kind}': {
    action: 'administer',
    scope: 'global',
    success: 200,
    target: async () => ({ id: KIND }),
    body: () => ({ displayName: 'CPU' }),
  },
  'GET /v1/organizations': {
    action: 'read',
    scope: 'global',
    success: 200,
    check: (body, { name }) => {
      const ids = (body.items as { id: string }[]).map((organization) => organization.id);
      if (principals[name].organization === null) expect(ids).toEqual(expect.arrayContaining([HOME, FOREIGN]));
      else expect(ids, 'a scoped principal lists its own organization only').toEqual([HOME]);
    },
  },
  'GET /v1/whoami': {
    action: 'read',
    scope: 'global',
    success: 200,
    check: (body, { name, principalId }) => {
      const { role, organization, project } = principals[name];
      expect(body).toEqual({ principal: principalId, role, organization, project });
    },
  },
  'POST /v1/tokens': {
    action: 'administer',
    scope: 'global',
    success: 201,
    body: () => ({ role: 'reader', organization: HOME }),
    check: (body) => expect(body.token).toMatch(/^allot_/),
  },
  'GET /v1/tokens': { action: 'administer', scope: 'global', success: 200 },
  'DELETE /v1/tokens/{id}': {
    action: 'administer',
    scope: 'global',
    success: 204,
    target: async (context) => {
      const { ledger } = context.test;
      const { record } = await ledger.createToken({ role: 'reader', organization: HOME }, { principal: 'admin' });
      return {
        id: record.id,
        unchanged: async () => {
          const now = (await ledger.listTokens()).find((token) => token.id === record.id);
          expect(now?.revokedAt, `token ${record.id} revoked by a refused request`).toBeNull();
        },
      };
    },
  },

  'GET /v1/regions': { action: 'administer', scope: 'global', success: 200 },
  'GET /v1/regions/{region}': { action: 'administer', scope: 'global', success: 200 },
  'PUT /v1/regions/{region}': { action: 'administer', scope: 'global', success: 200, body: () => ({}) },
  'PUT /v1/regions/{region}/hosts/{service}': {
    action: 'administer',
    scope: 'global',
    success: 200,
    body: () => ({ endpoint: 'http://127.0.0.1:9/', token: 'host-token' }),
  },
  'DELETE /v1/regions/{region}/hosts/{service}': {
    action: 'administer',
    scope: 'global',
    success: 204,
    target: async (context) => {
      const service = `svc-${context.next()}`;
      await context.test.ledger.putRegionHost(LIMIT_REGION, service, { endpoint: 'http://127.0.0.1:9', token: 't' });
      return {
        id: service,
        unchanged: async () => {
          const region = await context.test.ledger.getRegion(LIMIT_REGION);
          expect(region.hosts.map((h) => h.service)).toContain(service);
        },
      };
    },
  },

  // Organization routes.
  [`GET ${ORG}`]: { action: 'read', scope: 'organization', success: 200 },
  [`PUT ${ORG}`]: { action: 'administer', scope: 'organization', success: 200, body: () => ({}) },
  [`GET ${ORG}/projects`]: { action: 'read-organization', scope: 'organization', success: 200 },
  [`GET ${ORG}/quotas`]: { action: 'read', scope: 'organization', success: 200 },
  [`PUT ${ORG}/quotas`]: {
    action: 'administer',
    scope: 'organization',
    success: 200,
    body: () => ({ quotas: [{ kind: KIND, quantity: 1_000_000 }] }),
  },
  [`POST ${ORG}/batch`]: {
    action: 'allocate',
    scope: 'organization',
    success: 200,
    // The entry's project: one every principal that may write in the organization sees.
    target: async (_context, tenant) => ({ id: tenant.organization === HOME ? P1 : Q1 }),
    body: (context, target) => ({
      mode: 'atomic',
      operations: [{ op: 'allocation.create', project: target!.id, body: { resource: resourceOf(context), allocations: lines(1) } }],
    }),
    check: (body, who) => {
      expect(body.results[0].status).toBe(201);
      writtenBy('createdBy')(body.results[0].body, who);
    },
    refused: async (context, tenant, body) => {
      const [entry] = (body as { operations: { project: string; body: unknown }[] }).operations;
      await noAllocationFor(context, { ...tenant, project: entry!.project }, entry!.body);
    },
  },
  [`GET ${ORG}/journal`]: { action: 'read-organization', scope: 'organization', success: 200 },
  [`GET ${ORG}/subscriptions`]: { action: 'subscribe', scope: 'organization', success: 200 },
  [`POST ${ORG}/subscriptions`]: {
    action: 'subscribe',
    scope: 'organization',
    success: 201,
    body: () => ({ url: hookUrl, journal: {} }),
    check: (body, who) => {
      expect(body.secret).toMatch(/^whsec_/);
      writtenBy('createdBy')(body, who);
    },
  },
  [`GET ${ORG}/subscriptions/{id}`]: { action: 'subscribe', scope: 'organization', success: 200, target: freshSubscription },
  [`DELETE ${ORG}/subscriptions/{id}`]: { action: 'subscribe', scope: 'organization', success: 204, target: freshSubscription },
  [`POST ${ORG}/subscriptions/{id}/resume`]: { action: 'subscribe', scope: 'organization', success: 200, target: freshSubscription },
  [`POST ${ORG}/quota-requests`]: {
    action: 'request-quota',
    scope: 'organization',
    success: 201,
    // A cut of the project's cap: applied at once for who may set it, pending for a member.
    target: async (_context, tenant) => ({ id: '', resource: { kind: 'project', id: requestProject(tenant) } }),
    body: (context, target) => ({ kind: KIND, scope: 'project', project: target!.resource!.id, field: 'cap', preferred: 1_000_000 - context.next(), ...asking }),
    check: (body, who) => expect(body.requestedBy).toBe(who.principalId),
  },
  [`GET ${ORG}/quota-requests`]: { action: 'read', scope: 'organization', success: 200 },
  [`GET ${ORG}/quota-requests/{id}`]: { action: 'read', scope: 'organization', success: 200, target: freshRequest },
  [`POST ${ORG}/quota-requests/{id}/approve`]: {
    action: 'partition',
    scope: 'organization',
    success: 200,
    target: freshRequest,
    body: () => ({}),
    check: (body, who) => expect(body).toMatchObject({ state: 'approved', granted: 5, decidedBy: who.principalId }),
  },
  [`POST ${ORG}/quota-requests/{id}/deny`]: {
    action: 'partition',
    scope: 'organization',
    success: 200,
    target: freshRequest,
    body: () => ({ reason: 'not this quarter' }),
    check: (body) => expect(body.state).toBe('denied'),
  },
  [`POST ${ORG}/quota-requests/{id}/cancel`]: {
    action: 'request-quota',
    scope: 'organization',
    success: 200,
    target: freshRequest,
    check: (body) => expect(body.state).toBe('cancelled'),
  },
  'GET /v1/resource-kinds/{kind}/request-policy': { action: 'read', scope: 'global', success: 200, target: async () => ({ id: KIND }) },
  'PUT /v1/resource-kinds/{kind}/request-policy': {
    action: 'administer',
    scope: 'global',
    success: 200,
    target: async () => ({ id: KIND }),
    body: () => ({ decreaseMaxPercent: 40 }),
  },
  'GET /v1/subscriptions': { action: 'administer', scope: 'global', success: 200 },
  'POST /v1/subscriptions': { action: 'administer', scope: 'global', success: 201, body: () => ({ url: hookUrl, journal: {} }) },
  'GET /v1/subscriptions/{id}': { action: 'administer', scope: 'global', success: 200, target: freshSubscription },
  'DELETE /v1/subscriptions/{id}': { action: 'administer', scope: 'global', success: 204, target: freshSubscription },
  'POST /v1/subscriptions/{id}/resume': { action: 'administer', scope: 'global', success: 200, target: freshSubscription },
  [`GET ${ORG}/allocations`]: {
    action: 'read-organization',
    scope: 'organization',
    success: 200,
    check: (body, { tenant }) => {
      const projects = new Set((body.items as { project: string }[]).map((allocation) => allocation.project));
      expect([...projects].sort()).toEqual(tenant.organization === HOME ? [P1, P2].sort() : [Q1]);
    },
  },
  [`GET ${ORG}/limits`]: {
    action: 'read-organization',
    scope: 'organization',
    success: 200,
    check: (body, { tenant }) => {
      const projects = new Set((body.items as { project: string }[]).map((limit) => limit.project));
      expect([...projects].sort()).toEqual(tenant.organization === HOME ? [P1, P2].sort() : [Q1]);
    },
  },
  [`GET ${ORG}/history`]: { action: 'read', scope: 'organization', success: 200, query: `?kind=${KIND}` },

  // Project routes.
  [`GET ${PROJECT}`]: { action: 'read', scope: 'project', success: 200 },
  [`PUT ${PROJECT}`]: { action: 'create-project', scope: 'project', success: 200, body: () => ({}) },
  // The fixture projects hold an allocation and a hold: a delete the rules permit reaches the
  // ledger and is refused as not empty (409), deleting nothing; the others never get there.
  [`DELETE ${PROJECT}`]: {
    action: 'create-project',
    scope: 'project',
    success: 409,
    check: (body) => expect(body.type).toBe('/problems/project-not-empty'),
    refused: async (context, tenant) => {
      await context.test.ledger.getProject(tenant.organization!, tenant.project!);
    },
  },
  [`GET ${PROJECT}/quotas`]: { action: 'read', scope: 'project', success: 200 },
  [`GET ${PROJECT}/regions`]: { action: 'read', scope: 'project', success: 200 },
  [`PUT ${PROJECT}/regions`]: {
    action: 'create-project',
    scope: 'project',
    success: 200,
    body: () => ({ primary: LIMIT_REGION, enabled: [LIMIT_REGION] }),
  },
  [`GET ${PROJECT}/limits`]: { action: 'read', scope: 'project', success: 200 },
  [`GET ${PROJECT}/limits/{service}/{resourceType}/history`]: { action: 'read', scope: 'project', success: 200 },
  [`GET ${PROJECT}/limits/{service}/{resourceType}`]: { action: 'read', scope: 'project', success: 200 },
  [`PUT ${PROJECT}/limits/{service}/{resourceType}`]: {
    action: 'administer',
    scope: 'project',
    success: 200,
    // A new value each time: an unchanged limit keeps who set it last.
    body: (context) => ({ regions: [{ region: LIMIT_REGION, limit: 100 + context.next() }] }),
    check: (body, who) => expect(body.regions[0].updatedBy).toBe(who.principalId),
  },
  [`DELETE ${PROJECT}/limits/{service}/{resourceType}`]: {
    action: 'administer',
    scope: 'project',
    success: 204,
    target: async (context, tenant) => {
      const resourceType = `t-${context.next()}`;
      await context.test.ledger.setLimit(tenant.organization!, tenant.project!, LIMIT_SERVICE, resourceType, [
        { region: LIMIT_REGION, limit: 1 },
      ]);
      return {
        id: resourceType,
        unchanged: async () => {
          await context.test.ledger.getLimit(tenant.organization!, tenant.project!, LIMIT_SERVICE, resourceType);
        },
      };
    },
  },
  [`PUT ${PROJECT}/limits/{service}/{resourceType}/regions/{region}/usage`]: {
    action: 'report-usage',
    scope: 'project',
    success: 200,
    body: () => ({ usage: 3 }),
    check: (body) => expect(body).toMatchObject({ region: LIMIT_REGION, usage: 3 }),
  },
  [`PUT ${PROJECT}/quotas`]: {
    action: 'partition',
    scope: 'project',
    success: 200,
    body: () => ({ quotas: [{ kind: KIND, cap: 500_000 }] }),
    check: (body, who) => expect(body.quotas[0].updatedBy).toBe(who.principalId),
  },
  [`POST ${PROJECT}/allocations`]: {
    action: 'allocate',
    scope: 'project',
    success: 201,
    body: (context) => ({ resource: resourceOf(context), allocations: lines(1) }),
    check: writtenBy('createdBy'),
    refused: noAllocationFor,
  },
  [`GET ${PROJECT}/allocations`]: { action: 'read', scope: 'project', success: 200 },
  [`GET ${PROJECT}/allocations/{id}`]: { action: 'read', scope: 'project', success: 200, target: fixtureAllocation },
  [`PUT ${PROJECT}/allocations/{id}`]: {
    action: 'allocate',
    scope: 'project',
    success: 200,
    target: freshAllocation,
    body: (_context, target) => ({ resource: target!.resource, allocations: lines(2) }),
    check: writtenBy('updatedBy'),
  },
  [`DELETE ${PROJECT}/allocations/{id}`]: { action: 'allocate', scope: 'project', success: 204, target: freshAllocation },
  [`POST ${PROJECT}/holds`]: {
    action: 'allocate',
    scope: 'project',
    success: 201,
    body: (context) => ({ resource: resourceOf(context), allocations: lines(1), ttlSeconds: holdTtlSeconds }),
    check: writtenBy('createdBy'),
    refused: noHoldFor,
  },
  [`GET ${PROJECT}/holds`]: { action: 'read', scope: 'project', success: 200 },
  [`GET ${PROJECT}/holds/{id}`]: { action: 'read', scope: 'project', success: 200, target: fixtureHold },
  [`POST ${PROJECT}/holds/{id}/confirm`]: {
    action: 'allocate',
    scope: 'project',
    success: 200,
    target: freshHold,
    body: () => ({}),
    check: (body, who) => {
      expect(body.status).toBe('confirmed');
      writtenBy('updatedBy')(body, who);
    },
  },
  [`POST ${PROJECT}/holds/{id}/release`]: {
    action: 'allocate',
    scope: 'project',
    success: 200,
    target: freshHold,
    check: (body, who) => {
      expect(body.status).toBe('released');
      writtenBy('updatedBy')(body, who);
    },
  },
} satisfies Record<string, RouteSpec>;

type RouteKey = keyof typeof routes;
const routeKeys = Object.keys(routes) as RouteKey[];

/** Served, but not in the matrix: it streams until the client leaves (still checked for 401). */
const streaming = [`GET ${ORG}/watch`];

function expectedStatus(spec: RouteSpec, name: PrincipalName, tenant: Tenant): number {
  if (!sees(name, tenant)) return 404;
  if (!mayDo[principals[name].role].includes(spec.action)) return 403;
  return spec.success;
}

function fill(path: string, tenant: Tenant, id: string | undefined): string {
  return path
    .replace('{organization}', tenant.organization ?? '')
    .replace('{project}', tenant.project ?? '')
    .replace('{service}', path.includes('/hosts/{service}') && id !== undefined ? id : LIMIT_SERVICE)
    .replace('{resourceType}', id ?? LIMIT_TYPE)
    .replace('{region}', LIMIT_REGION)
    .replace(/\{(id|kind)\}/, id ?? '');
}

/** `/v1/...{x}...` with every parameter named, from the OpenAPI document: `METHOD path` keys. */
async function servedRoutes(app: FastifyInstance): Promise<string[]> {
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  expect(response.statusCode).toBe(200);
  const paths = (JSON.parse(response.body) as { paths: Record<string, Record<string, unknown>> }).paths;
  return Object.entries(paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

async function request(
  app: FastifyInstance,
  method: HTTPMethods,
  url: string,
  token: string | undefined,
  body?: unknown,
  options: { authorization?: string; remoteAddress?: string } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  const authorization = options.authorization ?? (token === undefined ? undefined : `Bearer ${token}`);
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await app.inject({
    method,
    url,
    headers,
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
  });
  let json: unknown;
  try {
    json = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text: response.body, json };
}

/**
 * The answer as a principal sees it, for the leak check: headers and body, without a problem's
 * `instance` (it echoes the request URL).
 */
function visibleText(response: ApiResponse): string {
  let body = response.text;
  if (String(response.headers['content-type']).startsWith('application/problem+json') && response.json) {
    const { instance: _instance, ...rest } = response.json as Record<string, unknown>;
    body = JSON.stringify(rest);
  }
  return `${JSON.stringify(response.headers)}\n${body}`;
}

describe.each(engines)('access matrix on %s', (engine: Engine) => {
  const clock = new ManualClock();
  let test: TestLedger;
  let app: FastifyInstance;
  const fixtures: Fixtures = {};
  const tokens = {} as Record<PrincipalName, string>;
  const principalIds = {} as Record<PrincipalName, string>;
  let counter = 0;
  let context: Context;

  beforeAll(async () => {
    test = await openTestLedger(engine, clock);
    app = await buildApp({ ledger: test.ledger, adminToken, webhookAllow: parseAllowList('127.0.0.0/8') });
    context = { test, fixtures, next: () => (counter += 1) };
    const { ledger } = test;
    await ledger.putKind(KIND, { displayName: 'CPU' });
    await ledger.putRegion(LIMIT_REGION, {});
    await ledger.putRegionHost(LIMIT_REGION, LIMIT_SERVICE, { endpoint: 'http://127.0.0.1:9', token: 'host-token' });
    for (const [organization, projects] of [
      [HOME, [P1, P2]],
      [FOREIGN, [Q1]],
    ] as const) {
      await ledger.putOrganization(organization, {});
      await ledger.setQuotaSet(organization, [{ kind: KIND, quantity: 1_000_000 }], { principal: 'admin' });
      for (const project of projects) {
        await ledger.putProject(organization, project, {});
        const allocation = await ledger.createAllocation(
          organization,
          project,
          { resource: resourceOf(context), allocations: lines(1) },
          { principal: 'admin' },
        );
        const hold = await ledger.createHold(
          organization,
          project,
          { resource: resourceOf(context), allocations: lines(1), ttlSeconds: holdTtlSeconds },
          { principal: 'admin' },
        );
        fixtures[project] = { allocation: allocation.id, hold: hold.id };
        await ledger.setLimit(organization, project, LIMIT_SERVICE, LIMIT_TYPE, [{ region: LIMIT_REGION, limit: 10 }]);
      }
    }
    for (const name of principalNames) {
      const { role, organization, project } = principals[name];
      const { token, record } = await ledger.createToken({ role, organization, project }, { principal: 'admin' });
      tokens[name] = token;
      principalIds[name] = `token:${record.id}`;
    }
  });

  afterAll(async () => {
    await app?.close();
    await test?.close();
  });

  it('the expectations table knows every /v1 route the app serves, and nothing else', async () => {
    const served = await servedRoutes(app);
    const known = [...routeKeys, ...streaming].sort();
    expect(served.filter((route) => !known.includes(route)), 'served routes missing from the table').toEqual([]);
    expect(known.filter((route) => !served.includes(route)), 'table routes the app does not serve').toEqual([]);
  });

  it.each(routeKeys)('%s: every principal × tenant answers as the rules say', async (key) => {
    const spec: RouteSpec = routes[key];
    const [method, path] = key.split(' ') as [Method, string];
    const mismatches: string[] = [];
    for (const tenant of tenantsOf[spec.scope]) {
      for (const name of principalNames) {
        const label = `${name} × ${tenant.name}`;
        const target = spec.target ? await spec.target(context, tenant) : undefined;
        const url = fill(path, tenant, target?.id) + (spec.query ?? '');
        const body = spec.body?.(context, target);
        const expected = expectedStatus(spec, name, tenant);
        const response = await request(app, method, url, tokens[name], body);
        if (response.status !== expected) {
          mismatches.push(`${label}: ${method} ${url} → ${response.status}, expected ${expected}: ${response.text.slice(0, 200)}`);
          continue;
        }
        if (expected === 404) expectProblem(response, 'not-found');
        if (expected === 403) expectProblem(response, 'forbidden');
        if (expected === spec.success) {
          spec.check?.(response.json, { name, principalId: principalIds[name], tenant });
        } else {
          await target?.unchanged?.();
          await spec.refused?.(context, tenant, body);
        }
        // Nothing foreign leaks: a 404 may name what the request itself named, nothing else.
        const text = visibleText(response);
        for (const secret of forbiddenFor(name, fixtures)) {
          if (expected === 404 && url.includes(secret)) continue;
          if (text.includes(secret)) mismatches.push(`${label}: ${method} ${url} (${response.status}) shows "${secret}": ${text.slice(0, 300)}`);
        }
        if (method === 'GET') {
          const head = await request(app, 'HEAD', url, tokens[name]);
          if (head.status !== expected) mismatches.push(`${label}: HEAD ${url} → ${head.status}, expected ${expected}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('an allocation created with the org-admin token records token:<id> as its creator', async () => {
    const url = `/v1/organizations/${HOME}/projects/${P1}/allocations`;
    const created = await request(app, 'POST', url, tokens['org-admin'], { resource: resourceOf(context), allocations: lines(1) });
    expect(created.status, created.text).toBe(201);
    const id = (created.json as { id: string }).id;
    expect(principalIds['org-admin']).toMatch(/^token:.+/);
    const read = await request(app, 'GET', `${url}/${id}`, adminToken);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ createdBy: principalIds['org-admin'], updatedBy: principalIds['org-admin'] });
    const journal = await test.ledger.readJournal(HOME, 0, 1000);
    expect(journal.find((entry) => entry.subject === id)?.principal).toBe(principalIds['org-admin']);
  });

  it('a missing, wrong, revoked or expired credential is 401 on every route, before any 404 or 403', async () => {
    const { ledger } = test;
    const revoked = await ledger.createToken({ role: 'service-admin' }, { principal: 'admin' });
    const expiring = await ledger.createToken(
      { role: 'service-admin', expiresAt: new Date(clock.nowMs() + 60_000).toISOString() },
      { principal: 'admin' },
    );
    // Both work first, so the 401s below are down to revocation and expiry.
    for (const token of [revoked.token, expiring.token]) {
      expect((await request(app, 'GET', '/v1/resource-kinds', token)).status).toBe(200);
    }
    await ledger.revokeToken(revoked.record.id);
    clock.advance(60_001);
    const credentials: { name: string; authorization?: string }[] = [
      { name: 'no token' },
      { name: 'wrong token', authorization: 'Bearer allot_not-a-token-anyone-was-given' },
      { name: 'revoked token', authorization: `Bearer ${revoked.token}` },
      { name: 'expired token', authorization: `Bearer ${expiring.token}` },
    ];
    const served = await servedRoutes(app);
    const mismatches: string[] = [];
    let address = 0;
    for (const key of served) {
      const [method, path] = key.split(' ') as [Method, string];
      // A foreign project and ids that exist: a 401 must not tell whether they do.
      const url = fill(path, tenantsOf.project[2]!, path.includes('{kind}') ? KIND : fixtures[Q1]!.allocation);
      // One address per route keeps each under the failed-authentication limit (429).
      address += 1;
      const remoteAddress = `10.0.${Math.floor(address / 250)}.${address % 250}`;
      for (const credential of credentials) {
        const response = await request(app, method, url, undefined, undefined, {
          ...(credential.authorization === undefined ? {} : { authorization: credential.authorization }),
          remoteAddress,
        });
        if (response.status !== 401) {
          mismatches.push(`${credential.name}: ${method} ${url} → ${response.status}: ${response.text.slice(0, 200)}`);
          continue;
        }
        expectProblem(response, 'unauthorized');
        expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
        expect(visibleText(response)).not.toContain(fixtures[Q1]!.hold);
      }
    }
    expect(mismatches).toEqual([]);
  });
});
