// Goal: the limits API (section A of the limits spec) answers exactly: GET lists a project's
// limits sorted by service and resource type, each with its regions sorted; PUT sets the
// configured limit per region (integers or quantity strings), drops the regions it does not
// list, keeps each region's reported usage, bumps a region's generation when it changes and
// journals `limit.set` with the exact before/after; DELETE removes a limit (204, then 404) and
// journals `limit.deleted`; usage reports update only the region they name and are not
// journaled; activeLimit = max(configuredLimit, usage) and gap = activeLimit - configuredLimit,
// including a decrease that races an increase of usage (the gap shows until usage falls back);
// bad requests are 400 and unknown tenants or limits 404, both changing nothing; an
// Idempotency-Key replays a PUT (and a usage report) without a second change; each role gets
// exactly what it may do (reads for reader, project-member of its own project, org-admin and
// service; PUT/DELETE for service-admins only; usage reports for service-admins and service
// tokens only); deleting a project with cascade removes its limits, so a re-created project
// has none.
// Method: per engine, a fresh ledger on a ManualClock and the app; tokens made through
// POST /v1/tokens. One ordered table of cases through `app.inject`, each checking the whole
// response body (literal numbers and timestamps, never recomputed), the entries it adds to
// acme's journal (read through GET /v1/organizations/acme/journal; none for refusals, usage
// reports and replays), and, for every refusal, that GET of every project's limits answers
// exactly as before.
import type { HTTPMethods } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/domain/errors.js';
import { engines } from '../support/engines.js';
import { closeApi, runCase, send, type ApiResponse, type Lazy } from './harness.js';
import { call, journalOf, openClockedApi, setupCases, type ClockedApi } from './harness-extra.js';

const start = Date.parse('2026-01-01T00:00:00Z');
/** The ISO time `seconds` after the ManualClock's start. */
const t = (seconds: number) => new Date(start + seconds * 1000).toISOString();

const limitsOf = (organization: string, project: string) => `/v1/organizations/${organization}/projects/${project}/limits`;
const web = limitsOf('acme', 'web');
const apiProject = limitsOf('acme', 'api');
const usageOf = (base: string, service: string, type: string, region: string) =>
  `${base}/${service}/${type}/regions/${region}/usage`;

interface RegionState {
  configured: number;
  active: number;
  usage: number;
  gap: number;
  generation: number;
  /** Seconds after start of the last configured change. */
  updatedAt: number;
  /** Seconds after start of the last usage report, or null. */
  reportedAt: number | null;
  updatedBy?: string;
}

/** One region entry, every field spelled out. */
const region = (name: string, state: RegionState) => ({
  region: name,
  hostStatus: 'none',
  configuredLimit: state.configured,
  activeLimit: state.active,
  usage: state.usage,
  gap: state.gap,
  usageReportedAt: state.reportedAt === null ? null : t(state.reportedAt),
  generation: state.generation,
  updatedBy: state.updatedBy ?? 'admin',
  updatedAt: t(state.updatedAt),
});

const limit = (project: string, service: string, resourceType: string, regions: unknown[]) => ({
  organization: 'acme',
  project,
  service,
  resourceType,
  global: null,
  regions,
});

/** The entry a limit change adds to acme's journal (revision checked separately). */
const journaled = (
  action: 'limit.set' | 'limit.deleted',
  at: number,
  changes: Record<string, unknown>,
  project = 'web',
  principal = 'admin',
) => ({ organization: 'acme', project, at: t(at), principal, action, subject: null, changes, deltas: [] });

const set = (service: string, resourceType: string, before: unknown, after: unknown) => ({
  service,
  resourceType,
  before,
  after,
});

/** The same elements in any order (the request's order of regions is not specified for `after`). */
const sameMembers = (expected: unknown[]) =>
  expect.toSatisfy(
    (actual: unknown) =>
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((item) => actual.some((other) => JSON.stringify(other) === JSON.stringify(item))),
    `the same members as ${JSON.stringify(expected)}`,
  );

type Who = 'reader' | 'member' | 'orgAdmin' | 'betaAdmin' | 'service' | 'serviceAdmin';

interface LimitCase {
  name: string;
  method: HTTPMethods;
  url: string;
  body?: unknown;
  /** A token made in setup; the bootstrap admin token when absent. */
  as?: Who;
  noAuth?: boolean;
  headers?: Record<string, string>;
  /** Seconds after start the ManualClock shows when the request is sent (never backwards). */
  at?: number;
  status: number;
  problem?: ErrorCode;
  /** The exact JSON body. */
  body200?: Lazy<unknown>;
  json?: (body: any, response: ApiResponse) => void;
  /**
   * What the request adds to acme's journal, in order. Default for anything but GET: nothing.
   * null: not checked (a project deletion, or a no-op PUT whose journaling is not specified).
   */
  journal?: Lazy<unknown[]> | null;
}

describe.each(engines)('limits API on %s', (engine) => {
  let api: ClockedApi;
  const tokens = {} as Record<Who, { id: string; token: string }>;

  beforeAll(async () => {
    api = await openClockedApi(engine);
    const setup = setupCases({
      kinds: { cpu: { displayName: 'CPU' } },
      organizations: { acme: ['web', 'api'], beta: ['main'] },
      quotas: { acme: [{ kind: 'cpu', quantity: 100 }] },
    });
    for (const apiCase of setup) await runCase(api.app, apiCase);
    // A live allocation in acme/api, so its deletion needs cascade.
    const allocation = await call(api.app, 'POST', '/v1/organizations/acme/projects/api/allocations', {
      resource: { kind: 'vm', id: 'vm-1' },
      allocations: [{ kind: 'cpu', committed: 2 }],
    });
    expect(allocation.status, allocation.text).toBe(201);
    const scopes: Record<Who, Record<string, string>> = {
      reader: { role: 'reader', organization: 'acme' },
      member: { role: 'project-member', organization: 'acme', project: 'web' },
      orgAdmin: { role: 'org-admin', organization: 'acme' },
      betaAdmin: { role: 'org-admin', organization: 'beta' },
      service: { role: 'service' },
      serviceAdmin: { role: 'service-admin' },
    };
    for (const [who, scope] of Object.entries(scopes) as [Who, Record<string, string>][]) {
      const made = await call(api.app, 'POST', '/v1/tokens', scope);
      expect(made.status, made.text).toBe(201);
      tokens[who] = { id: made.json.id, token: made.json.token };
    }
  });
  afterAll(() => closeApi(api));

  /** Every project's limits as GET answers them (status and body), for the refusal check. */
  async function allLimits(): Promise<unknown> {
    const out: Record<string, unknown> = {};
    for (const base of [web, apiProject, limitsOf('beta', 'main')]) {
      const response = await send(api.app, { method: 'GET', url: base });
      out[base] = { status: response.status, body: response.json };
    }
    return out;
  }

  async function run(apiCase: LimitCase): Promise<void> {
    if (apiCase.at !== undefined) {
      const target = start + apiCase.at * 1000;
      expect(target, 'the clock never goes back').toBeGreaterThanOrEqual(api.clock.nowMs());
      api.clock.advance(target - api.clock.nowMs());
    }
    const mutation = apiCase.method !== 'GET';
    const refused = apiCase.status >= 400;
    const journalBefore = mutation ? await journalOf(api.app, 'acme') : [];
    const limitsBefore = mutation && refused ? await allLimits() : undefined;

    const headers: Record<string, string> = { ...(apiCase.headers ?? {}) };
    if (apiCase.as) headers.authorization = `Bearer ${tokens[apiCase.as].token}`;
    const response = await runCase(api.app, {
      name: apiCase.name,
      method: apiCase.method,
      url: apiCase.url,
      ...(apiCase.body === undefined ? {} : { body: apiCase.body }),
      headers,
      ...(apiCase.noAuth ? { noAuth: true } : {}),
      status: apiCase.status,
      ...(apiCase.problem ? { problem: apiCase.problem } : {}),
    });
    if (apiCase.body200 !== undefined) {
      const expected = typeof apiCase.body200 === 'function' ? (apiCase.body200 as () => unknown)() : apiCase.body200;
      expect(response.json).toEqual(expected);
    }
    if (apiCase.status === 204) expect(response.text).toBe('');
    apiCase.json?.(response.json, response);

    if (mutation && apiCase.journal !== null) {
      const expectedEntries =
        typeof apiCase.journal === 'function' ? (apiCase.journal as () => unknown[])() : (apiCase.journal ?? []);
      const journalAfter = await journalOf(api.app, 'acme');
      expect(journalAfter.slice(0, journalBefore.length), 'earlier entries stay').toEqual(journalBefore);
      const added = journalAfter.slice(journalBefore.length);
      const lastRevision = journalBefore.at(-1)?.revision ?? 0;
      expect(added.map((entry) => entry.revision)).toEqual(expectedEntries.map((_, index) => lastRevision + index + 1));
      expect(added.map(({ revision: _revision, ...entry }) => entry)).toEqual(expectedEntries);
    }
    if (limitsBefore !== undefined) {
      expect(await allLimits(), 'a refused request changes no limit').toEqual(limitsBefore);
    }
  }

  const CI = `${web}/compute/instances`;
  const CC = `${web}/compute/cores`;
  const BV = `${web}/block/volumes`;
  const NA = `${web}/network/addresses`;

  // Expected states, named where several cases show them.
  const ccCreated = limit('web', 'compute', 'cores', [
    region('ap-1', { configured: 16, active: 16, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
    region('eu-1', { configured: 0, active: 0, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
    region('us-1', { configured: 1024, active: 1024, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
  ]);
  const bvCreated = limit('web', 'block', 'volumes', [
    region('eu-1', { configured: 100, active: 100, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
  ]);
  const ciAfterRace = limit('web', 'compute', 'instances', [
    region('eu-1', { configured: 8, active: 15, usage: 15, gap: 7, generation: 3, updatedAt: 4, reportedAt: 3 }),
    region('us-1', { configured: 2500, active: 2500, usage: 0, gap: 0, generation: 3, updatedAt: 4, reportedAt: null }),
  ]);
  const ciReplaced = limit('web', 'compute', 'instances', [
    region('ap-1', { configured: 7, active: 7, usage: 0, gap: 0, generation: 1, updatedAt: 6, reportedAt: null }),
    region('us-1', { configured: 2600, active: 2600, usage: 2500, gap: 0, generation: 4, updatedAt: 6, reportedAt: 5 }),
  ]);
  const bvAfterIdempotency = limit('web', 'block', 'volumes', [
    region('eu-1', { configured: 200, active: 200, usage: 150, gap: 0, generation: 2, updatedAt: 8, reportedAt: 10 }),
  ]);
  const webSettled = { items: [bvAfterIdempotency, ccCreated, ciReplaced] };

  const empty: LimitCase[] = [
    { name: 'GET a project without limits → {items: []}', method: 'GET', url: web, status: 200, body200: { items: [] } },
    { name: 'GET a limit that was never set → 404', method: 'GET', url: CI, status: 404, problem: 'not-found' },
    { name: 'DELETE a limit that was never set → 404', method: 'DELETE', url: CI, status: 404, problem: 'not-found' },
    {
      name: 'a usage report for a limit that was never set → 404',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'eu-1'),
      body: { usage: 1 },
      status: 404,
      problem: 'not-found',
    },
  ];

  const create: LimitCase[] = [
    {
      name: 'PUT a limit in two regions (integer and "2k") → 200, the whole limit, generation 1, no usage yet',
      method: 'PUT',
      url: CI,
      at: 0,
      body: { regions: [{ region: 'eu-1', limit: 50 }, { region: 'us-1', limit: '2k' }] },
      status: 200,
      body200: limit('web', 'compute', 'instances', [
        region('eu-1', { configured: 50, active: 50, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
        region('us-1', { configured: 2000, active: 2000, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
      ]),
      journal: [
        journaled('limit.set', 0, set('compute', 'instances', [], [
          { region: 'eu-1', limit: 50 },
          { region: 'us-1', limit: 2000 },
        ])),
      ],
    },
    {
      name: 'GET the limit reads back what PUT set',
      method: 'GET',
      url: CI,
      status: 200,
      body200: limit('web', 'compute', 'instances', [
        region('eu-1', { configured: 50, active: 50, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
        region('us-1', { configured: 2000, active: 2000, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
      ]),
    },
    {
      name: 'PUT regions listed out of order ("1Ki", 0, 16) → regions answered sorted',
      method: 'PUT',
      url: CC,
      body: {
        regions: [
          { region: 'us-1', limit: '1Ki' },
          { region: 'eu-1', limit: 0 },
          { region: 'ap-1', limit: 16 },
        ],
      },
      status: 200,
      body200: ccCreated,
      journal: [
        journaled('limit.set', 0, set('compute', 'cores', [], sameMembers([
          { region: 'us-1', limit: 1024 },
          { region: 'eu-1', limit: 0 },
          { region: 'ap-1', limit: 16 },
        ]))),
      ],
    },
    {
      name: 'PUT a limit of another service',
      method: 'PUT',
      url: BV,
      body: { regions: [{ region: 'eu-1', limit: 100 }] },
      status: 200,
      body200: bvCreated,
      journal: [journaled('limit.set', 0, set('block', 'volumes', [], [{ region: 'eu-1', limit: 100 }]))],
    },
    {
      name: 'GET lists the limits sorted by service, then resource type',
      method: 'GET',
      url: web,
      status: 200,
      body200: {
        items: [
          bvCreated,
          ccCreated,
          limit('web', 'compute', 'instances', [
            region('eu-1', { configured: 50, active: 50, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
            region('us-1', { configured: 2000, active: 2000, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
          ]),
        ],
      },
    },
    { name: "another project's limits are its own: acme/api has none", method: 'GET', url: apiProject, status: 200, body200: { items: [] } },
    {
      name: "another organization's project has none",
      method: 'GET',
      url: limitsOf('beta', 'main'),
      status: 200,
      body200: { items: [] },
    },
    {
      name: 'GET the same service and type in another organization → 404',
      method: 'GET',
      url: `${limitsOf('beta', 'main')}/compute/instances`,
      status: 404,
      problem: 'not-found',
    },
  ];

  // Usage reports and the active limit; a decrease racing an increase of usage.
  const usage: LimitCase[] = [
    {
      name: 'a usage report (12 under 50) → 200 the region entry; usageReportedAt set; not journaled',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'eu-1'),
      at: 1,
      body: { usage: 12 },
      status: 200,
      body200: region('eu-1', { configured: 50, active: 50, usage: 12, gap: 0, generation: 1, updatedAt: 0, reportedAt: 1 }),
      journal: [],
    },
    {
      name: 'GET shows the usage in that region only',
      method: 'GET',
      url: CI,
      status: 200,
      body200: limit('web', 'compute', 'instances', [
        region('eu-1', { configured: 50, active: 50, usage: 12, gap: 0, generation: 1, updatedAt: 0, reportedAt: 1 }),
        region('us-1', { configured: 2000, active: 2000, usage: 0, gap: 0, generation: 1, updatedAt: 0, reportedAt: null }),
      ]),
    },
    {
      name: 'lowering configured to 10 below usage 12 → active 12, gap 2; usage kept; generation 2',
      method: 'PUT',
      url: CI,
      at: 2,
      body: { regions: [{ region: 'eu-1', limit: 10 }, { region: 'us-1', limit: 3000 }] },
      status: 200,
      body200: limit('web', 'compute', 'instances', [
        region('eu-1', { configured: 10, active: 12, usage: 12, gap: 2, generation: 2, updatedAt: 2, reportedAt: 1 }),
        region('us-1', { configured: 3000, active: 3000, usage: 0, gap: 0, generation: 2, updatedAt: 2, reportedAt: null }),
      ]),
      journal: [
        journaled('limit.set', 2, set('compute', 'instances',
          [{ region: 'eu-1', limit: 50 }, { region: 'us-1', limit: 2000 }],
          [{ region: 'eu-1', limit: 10 }, { region: 'us-1', limit: 3000 }],
        )),
      ],
    },
    {
      name: 'usage rises to 15 → active 15, gap 5; generation unchanged',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'eu-1'),
      at: 3,
      body: { usage: 15 },
      status: 200,
      body200: region('eu-1', { configured: 10, active: 15, usage: 15, gap: 5, generation: 2, updatedAt: 2, reportedAt: 3 }),
      journal: [],
    },
    {
      name: 'configured lowered again to 8 while usage is 15 → active 15, gap 7, generation 3',
      method: 'PUT',
      url: CI,
      at: 4,
      body: { regions: [{ region: 'eu-1', limit: 8 }, { region: 'us-1', limit: 2500 }] },
      status: 200,
      body200: ciAfterRace,
      journal: [
        journaled('limit.set', 4, set('compute', 'instances',
          [{ region: 'eu-1', limit: 10 }, { region: 'us-1', limit: 3000 }],
          [{ region: 'eu-1', limit: 8 }, { region: 'us-1', limit: 2500 }],
        )),
      ],
    },
    { name: 'GET shows the gap', method: 'GET', url: CI, status: 200, body200: ciAfterRace },
    {
      name: 'usage falls to 5 → active back to configured 8, gap 0',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'eu-1'),
      at: 5,
      body: { usage: 5 },
      status: 200,
      body200: region('eu-1', { configured: 8, active: 8, usage: 5, gap: 0, generation: 3, updatedAt: 4, reportedAt: 5 }),
      journal: [],
    },
    {
      name: 'usage equal to configured (2500) → active 2500, gap 0',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'us-1'),
      body: { usage: 2500 },
      status: 200,
      body200: region('us-1', { configured: 2500, active: 2500, usage: 2500, gap: 0, generation: 3, updatedAt: 4, reportedAt: 5 }),
      journal: [],
    },
    {
      name: 'the list shows both reports and leaves the other limits as they were',
      method: 'GET',
      url: web,
      status: 200,
      body200: {
        items: [
          bvCreated,
          ccCreated,
          limit('web', 'compute', 'instances', [
            region('eu-1', { configured: 8, active: 8, usage: 5, gap: 0, generation: 3, updatedAt: 4, reportedAt: 5 }),
            region('us-1', { configured: 2500, active: 2500, usage: 2500, gap: 0, generation: 3, updatedAt: 4, reportedAt: 5 }),
          ]),
        ],
      },
    },
  ];

  // PUT replaces the set of regions.
  const replace: LimitCase[] = [
    {
      name: 'PUT without eu-1 and with a new ap-1 → eu-1 gone, ap-1 generation 1, us-1 keeps its usage',
      method: 'PUT',
      url: CI,
      at: 6,
      body: { regions: [{ region: 'ap-1', limit: 7 }, { region: 'us-1', limit: 2600 }] },
      status: 200,
      body200: ciReplaced,
      journal: [
        journaled('limit.set', 6, set('compute', 'instances',
          [{ region: 'eu-1', limit: 8 }, { region: 'us-1', limit: 2500 }],
          [{ region: 'ap-1', limit: 7 }, { region: 'us-1', limit: 2600 }],
        )),
      ],
    },
    { name: 'GET shows exactly the listed regions', method: 'GET', url: CI, status: 200, body200: ciReplaced },
    {
      name: 'a usage report for the removed region → 404',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'eu-1'),
      body: { usage: 1 },
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'a usage report for a region that never had a limit → 404',
      method: 'PUT',
      url: usageOf(web, 'compute', 'instances', 'sa-1'),
      body: { usage: 1 },
      status: 404,
      problem: 'not-found',
    },
  ];

  // Idempotency-Key on PUT and on a usage report.
  const idempotency: LimitCase[] = [
    {
      name: 'PUT with an Idempotency-Key → 200, generation 2',
      method: 'PUT',
      url: BV,
      at: 8,
      headers: { 'idempotency-key': 'limits-put-1' },
      body: { regions: [{ region: 'eu-1', limit: 200 }] },
      status: 200,
      body200: limit('web', 'block', 'volumes', [
        region('eu-1', { configured: 200, active: 200, usage: 0, gap: 0, generation: 2, updatedAt: 8, reportedAt: null }),
      ]),
      journal: [
        journaled('limit.set', 8, set('block', 'volumes', [{ region: 'eu-1', limit: 100 }], [{ region: 'eu-1', limit: 200 }])),
      ],
    },
    {
      name: 'the same PUT with the same key later → the first answer replayed, no second change or entry',
      method: 'PUT',
      url: BV,
      at: 9,
      headers: { 'idempotency-key': 'limits-put-1' },
      body: { regions: [{ region: 'eu-1', limit: 200 }] },
      status: 200,
      body200: limit('web', 'block', 'volumes', [
        region('eu-1', { configured: 200, active: 200, usage: 0, gap: 0, generation: 2, updatedAt: 8, reportedAt: null }),
      ]),
      json: (_body, response) => expect(response.headers['idempotent-replayed']).toBe('true'),
      journal: [],
    },
    {
      name: 'GET after the replay: still generation 2, updated at the first request',
      method: 'GET',
      url: BV,
      status: 200,
      body200: limit('web', 'block', 'volumes', [
        region('eu-1', { configured: 200, active: 200, usage: 0, gap: 0, generation: 2, updatedAt: 8, reportedAt: null }),
      ]),
    },
    {
      name: 'the same key with another body → 422 idempotency-key-reused, nothing changed',
      method: 'PUT',
      url: BV,
      headers: { 'idempotency-key': 'limits-put-1' },
      body: { regions: [{ region: 'eu-1', limit: 300 }] },
      status: 422,
      problem: 'idempotency-key-reused',
    },
    {
      name: 'a usage report with an Idempotency-Key → 200',
      method: 'PUT',
      url: usageOf(web, 'block', 'volumes', 'eu-1'),
      at: 10,
      headers: { 'idempotency-key': 'limits-usage-1' },
      body: { usage: 150 },
      status: 200,
      body200: region('eu-1', { configured: 200, active: 200, usage: 150, gap: 0, generation: 2, updatedAt: 8, reportedAt: 10 }),
      journal: [],
    },
    {
      name: 'replayed later: the first answer (reported at 10), marked as replayed',
      method: 'PUT',
      url: usageOf(web, 'block', 'volumes', 'eu-1'),
      at: 11,
      headers: { 'idempotency-key': 'limits-usage-1' },
      body: { usage: 150 },
      status: 200,
      body200: region('eu-1', { configured: 200, active: 200, usage: 150, gap: 0, generation: 2, updatedAt: 8, reportedAt: 10 }),
      json: (_body, response) => expect(response.headers['idempotent-replayed']).toBe('true'),
      journal: [],
    },
    { name: 'GET: the replay did not report again', method: 'GET', url: BV, status: 200, body200: bvAfterIdempotency },
  ];

  // Generation on an unchanged region, then DELETE.
  const remove: LimitCase[] = [
    {
      name: 'PUT network/addresses → 200, generation 1',
      method: 'PUT',
      url: NA,
      at: 12,
      body: { regions: [{ region: 'eu-1', limit: 4 }] },
      status: 200,
      body200: limit('web', 'network', 'addresses', [
        region('eu-1', { configured: 4, active: 4, usage: 0, gap: 0, generation: 1, updatedAt: 12, reportedAt: null }),
      ]),
      journal: [journaled('limit.set', 12, set('network', 'addresses', [], [{ region: 'eu-1', limit: 4 }]))],
    },
    {
      name: 'PUT the same limit again: no change of the region, so its generation stays 1',
      method: 'PUT',
      url: NA,
      at: 13,
      body: { regions: [{ region: 'eu-1', limit: 4 }] },
      status: 200,
      json: (body) => {
        expect(body.regions).toHaveLength(1);
        expect(body.regions[0]).toMatchObject({ region: 'eu-1', configuredLimit: 4, activeLimit: 4, usage: 0, gap: 0 });
        expect(body.regions[0].generation).toBe(1);
      },
      journal: null,
    },
    {
      name: 'DELETE the limit → 204, journaled limit.deleted',
      method: 'DELETE',
      url: NA,
      at: 14,
      status: 204,
      journal: [journaled('limit.deleted', 14, { service: 'network', resourceType: 'addresses' })],
    },
    { name: 'GET the deleted limit → 404', method: 'GET', url: NA, status: 404, problem: 'not-found' },
    { name: 'DELETE it again → 404, no entry', method: 'DELETE', url: NA, status: 404, problem: 'not-found' },
    {
      name: 'a usage report for the deleted limit → 404',
      method: 'PUT',
      url: usageOf(web, 'network', 'addresses', 'eu-1'),
      body: { usage: 1 },
      status: 404,
      problem: 'not-found',
    },
    { name: 'the list no longer shows it, the others unchanged', method: 'GET', url: web, status: 200, body200: webSettled },
  ];

  const badPut = (name: string, body: unknown, url = CI): LimitCase => ({
    name: `PUT ${name} → 400, nothing changed`,
    method: 'PUT',
    url,
    body,
    status: 400,
    problem: 'invalid-request',
  });
  const badUsage = (name: string, body: unknown, url = usageOf(web, 'compute', 'instances', 'us-1')): LimitCase => ({
    name: `usage report ${name} → 400, nothing changed`,
    method: 'PUT',
    url,
    body,
    status: 400,
    problem: 'invalid-request',
  });
  const one = (limitValue: unknown) => ({ regions: [{ region: 'us-1', limit: limitValue }] });

  const invalid: LimitCase[] = [
    badPut('with no regions', { regions: [] }),
    badPut('with no regions field', {}),
    badPut('with a region listed twice', { regions: [{ region: 'us-1', limit: 1 }, { region: 'us-1', limit: 2 }] }),
    badPut('with an upper-case region id', { regions: [{ region: 'US-1', limit: 1 }] }),
    badPut('with a region id starting with "-"', { regions: [{ region: '-us', limit: 1 }] }),
    badPut('with an empty region id', { regions: [{ region: '', limit: 1 }] }),
    badPut('with a 64-character region id', { regions: [{ region: `r${'a'.repeat(63)}`, limit: 1 }] }),
    badPut('with a region id containing "_"', { regions: [{ region: 'us_1', limit: 1 }] }),
    badPut('with an upper-case service id in the path', one(1), `${web}/Compute/instances`),
    badPut('with a resource type containing "_" in the path', one(1), `${web}/compute/in_stances`),
    badPut('with a 64-character resource type in the path', one(1), `${web}/compute/${'t'.repeat(64)}`),
    badPut('with a negative limit', one(-1)),
    badPut('with a fractional limit', one(1.5)),
    badPut('with a fractional limit string', one('1.5')),
    badPut('with a negative limit string', one('-5')),
    badPut('with a limit string that is no quantity', one('lots')),
    badPut('with no limit', { regions: [{ region: 'us-1' }] }),
    badPut('with an unknown top-level field', { regions: [{ region: 'us-1', limit: 1 }], force: true }),
    badPut('with an unknown region field', { regions: [{ region: 'us-1', limit: 1, usage: 3 }] }),
    badUsage('with a negative usage', { usage: -1 }),
    badUsage('with a fractional usage', { usage: 1.5 }),
    badUsage('with no usage', {}),
    badUsage('with an unknown field', { usage: 1, region: 'us-1' }),
    badUsage('for an upper-case region id', { usage: 1 }, usageOf(web, 'compute', 'instances', 'US-1')),
    { name: 'GET after the refusals: every limit as before', method: 'GET', url: web, status: 200, body200: webSettled },
  ];

  const notFound = (name: string, method: HTTPMethods, url: string, body?: unknown): LimitCase => ({
    name: `${name} → 404`,
    method,
    url,
    ...(body === undefined ? {} : { body }),
    status: 404,
    problem: 'not-found',
  });
  const unknownTenants: LimitCase[] = [
    notFound('GET the limits of an unknown organization', 'GET', limitsOf('nope', 'web')),
    notFound('GET the limits of an unknown project', 'GET', limitsOf('acme', 'nope')),
    notFound('GET a limit of an unknown project', 'GET', `${limitsOf('acme', 'nope')}/compute/instances`),
    notFound('PUT a limit in an unknown organization', 'PUT', `${limitsOf('nope', 'web')}/compute/instances`, one(1)),
    notFound('PUT a limit in an unknown project', 'PUT', `${limitsOf('acme', 'nope')}/compute/instances`, one(1)),
    notFound('DELETE a limit in an unknown project', 'DELETE', `${limitsOf('acme', 'nope')}/compute/instances`),
    notFound('DELETE a limit in an unknown organization', 'DELETE', `${limitsOf('nope', 'web')}/compute/instances`),
    notFound('a usage report in an unknown project', 'PUT', usageOf(limitsOf('acme', 'nope'), 'compute', 'instances', 'us-1'), {
      usage: 1,
    }),
    notFound('a usage report in an unknown organization', 'PUT', usageOf(limitsOf('nope', 'web'), 'compute', 'instances', 'us-1'), {
      usage: 1,
    }),
  ];

  const forbidden = (who: Who, method: HTTPMethods, url: string, body?: unknown): LimitCase => ({
    name: `${who}: ${method} ${url.replace('/v1/organizations/', '')} → 403`,
    as: who,
    method,
    url,
    ...(body === undefined ? {} : { body }),
    status: 403,
    problem: 'forbidden',
  });
  const hidden = (who: Who, method: HTTPMethods, url: string, body?: unknown): LimitCase => ({
    name: `${who}: ${method} ${url.replace('/v1/organizations/', '')} → 404 (cannot see the tenant)`,
    as: who,
    method,
    url,
    ...(body === undefined ? {} : { body }),
    status: 404,
    problem: 'not-found',
  });
  const reads = (who: Who): LimitCase[] => [
    { name: `${who}: GET the list → 200, the same as the admin's`, as: who, method: 'GET', url: web, status: 200, body200: webSettled },
    { name: `${who}: GET one limit → 200`, as: who, method: 'GET', url: CI, status: 200, body200: ciReplaced },
  ];
  const usReport = usageOf(web, 'compute', 'instances', 'us-1');

  const access: LimitCase[] = [
    {
      name: 'no token → 401',
      noAuth: true,
      method: 'PUT',
      url: CI,
      body: one(1),
      status: 401,
      problem: 'unauthorized',
    },
    { name: 'no token: GET → 401', noAuth: true, method: 'GET', url: web, status: 401, problem: 'unauthorized' },
    // reader
    ...reads('reader'),
    forbidden('reader', 'PUT', CI, one(1)),
    forbidden('reader', 'DELETE', CI),
    forbidden('reader', 'PUT', usReport, { usage: 1 }),
    // project-member of acme/web
    ...reads('member'),
    hidden('member', 'GET', apiProject),
    hidden('member', 'GET', `${apiProject}/compute/instances`),
    hidden('member', 'PUT', `${apiProject}/compute/instances`, one(1)),
    forbidden('member', 'PUT', CI, one(1)),
    forbidden('member', 'DELETE', CI),
    forbidden('member', 'PUT', usReport, { usage: 1 }),
    // org-admin of acme
    ...reads('orgAdmin'),
    { name: 'orgAdmin: GET another project of its organization → 200', as: 'orgAdmin', method: 'GET', url: apiProject, status: 200, body200: { items: [] } },
    forbidden('orgAdmin', 'PUT', CI, one(1)),
    forbidden('orgAdmin', 'PUT', `${apiProject}/compute/instances`, one(1)),
    forbidden('orgAdmin', 'DELETE', CI),
    forbidden('orgAdmin', 'PUT', usReport, { usage: 1 }),
    // org-admin of beta
    hidden('betaAdmin', 'GET', web),
    hidden('betaAdmin', 'GET', CI),
    hidden('betaAdmin', 'PUT', CI, one(1)),
    hidden('betaAdmin', 'DELETE', CI),
    hidden('betaAdmin', 'PUT', usReport, { usage: 1 }),
    // service token
    ...reads('service'),
    forbidden('service', 'PUT', CI, one(1)),
    forbidden('service', 'PUT', `${web}/compute/gpus`, one(1)),
    forbidden('service', 'DELETE', CI),
    { name: 'GET after every refusal: every limit as before', method: 'GET', url: web, status: 200, body200: webSettled },
    // Usage reports raise the active limit, so only service-admins (the controller) send them.
    forbidden('service', 'PUT', usReport, { usage: 2700 }),
    {
      name: 'service-admin: a usage report above configured → 200, active 2700, gap 100, updatedBy still admin, not journaled',
      as: 'serviceAdmin',
      method: 'PUT',
      url: usReport,
      at: 15,
      body: { usage: 2700 },
      status: 200,
      body200: region('us-1', { configured: 2600, active: 2700, usage: 2700, gap: 100, generation: 4, updatedAt: 6, reportedAt: 15 }),
      journal: [],
    },
    {
      name: 'GET shows the service-admin token’s report',
      method: 'GET',
      url: CI,
      status: 200,
      body200: limit('web', 'compute', 'instances', [
        region('ap-1', { configured: 7, active: 7, usage: 0, gap: 0, generation: 1, updatedAt: 6, reportedAt: null }),
        region('us-1', { configured: 2600, active: 2700, usage: 2700, gap: 100, generation: 4, updatedAt: 6, reportedAt: 15 }),
      ]),
    },
    {
      name: 'a service-admin token may PUT: updatedBy and the journal name the token',
      as: 'serviceAdmin',
      method: 'PUT',
      url: BV,
      at: 16,
      body: { regions: [{ region: 'eu-1', limit: 250 }] },
      status: 200,
      body200: () =>
        limit('web', 'block', 'volumes', [
          region('eu-1', {
            configured: 250,
            active: 250,
            usage: 150,
            gap: 0,
            generation: 3,
            updatedAt: 16,
            reportedAt: 10,
            updatedBy: `token:${tokens.serviceAdmin.id}`,
          }),
        ]),
      journal: () => [
        journaled(
          'limit.set',
          16,
          set('block', 'volumes', [{ region: 'eu-1', limit: 200 }], [{ region: 'eu-1', limit: 250 }]),
          'web',
          `token:${tokens.serviceAdmin.id}`,
        ),
      ],
    },
  ];

  /** acme/web's limits after the access cases (the last PUT was by the service-admin token). */
  const webFinal = () => ({
    items: [
      limit('web', 'block', 'volumes', [
        region('eu-1', {
          configured: 250,
          active: 250,
          usage: 150,
          gap: 0,
          generation: 3,
          updatedAt: 16,
          reportedAt: 10,
          updatedBy: `token:${tokens.serviceAdmin.id}`,
        }),
      ]),
      ccCreated,
      limit('web', 'compute', 'instances', [
        region('ap-1', { configured: 7, active: 7, usage: 0, gap: 0, generation: 1, updatedAt: 6, reportedAt: null }),
        region('us-1', { configured: 2600, active: 2700, usage: 2700, gap: 100, generation: 4, updatedAt: 6, reportedAt: 15 }),
      ]),
    ],
  });

  // Deleting a project with cascade removes its limits.
  const apiCI = `${apiProject}/compute/instances`;
  const projectDeletion: LimitCase[] = [
    {
      name: 'PUT a limit in acme/api',
      method: 'PUT',
      url: apiCI,
      at: 20,
      body: { regions: [{ region: 'eu-1', limit: 5 }] },
      status: 200,
      body200: limit('api', 'compute', 'instances', [
        region('eu-1', { configured: 5, active: 5, usage: 0, gap: 0, generation: 1, updatedAt: 20, reportedAt: null }),
      ]),
      journal: [journaled('limit.set', 20, set('compute', 'instances', [], [{ region: 'eu-1', limit: 5 }]), 'api')],
    },
    {
      name: 'report its usage',
      method: 'PUT',
      url: usageOf(apiProject, 'compute', 'instances', 'eu-1'),
      body: { usage: 3 },
      status: 200,
      body200: region('eu-1', { configured: 5, active: 5, usage: 3, gap: 0, generation: 1, updatedAt: 20, reportedAt: 20 }),
      journal: [],
    },
    {
      name: 'DELETE the project without cascade (it has an allocation) → 409, its limit stays',
      method: 'DELETE',
      url: '/v1/organizations/acme/projects/api',
      status: 409,
      problem: 'project-not-empty',
    },
    {
      name: 'DELETE the project with cascade → 204',
      method: 'DELETE',
      url: '/v1/organizations/acme/projects/api?cascade=true',
      at: 21,
      status: 204,
      journal: null,
    },
    { name: 'the deleted project has no limits to list → 404', method: 'GET', url: apiProject, status: 404, problem: 'not-found' },
    {
      name: 're-create the project',
      method: 'PUT',
      url: '/v1/organizations/acme/projects/api',
      body: {},
      status: 201,
      journal: null,
    },
    { name: 'the re-created project has no limits', method: 'GET', url: apiProject, status: 200, body200: { items: [] } },
    { name: 'nor the old limit → 404', method: 'GET', url: apiCI, status: 404, problem: 'not-found' },
    {
      name: 'nor a region to report usage to → 404',
      method: 'PUT',
      url: usageOf(apiProject, 'compute', 'instances', 'eu-1'),
      body: { usage: 1 },
      status: 404,
      problem: 'not-found',
    },
    {
      name: "acme/web's limits are untouched by the deletion",
      method: 'GET',
      url: web,
      status: 200,
      body200: webFinal,
    },
  ];

  for (const apiCase of [
    ...empty,
    ...create,
    ...usage,
    ...replace,
    ...idempotency,
    ...remove,
    ...invalid,
    ...unknownTenants,
    ...access,
    ...projectDeletion,
  ]) {
    it(apiCase.name, async () => {
      await run(apiCase);
    });
  }

  it("beta's journal has no limit entries: acme's changes stay in acme", async () => {
    const entries = await journalOf(api.app, 'beta');
    expect(entries.filter((entry) => entry.action.startsWith('limit.'))).toEqual([]);
  });
});
