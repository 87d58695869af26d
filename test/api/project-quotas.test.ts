// Goal: project quotas (caps and guarantees) do over HTTP exactly what the spec promises.
// GET/PUT …/projects/{project}/quotas list every kind (sorted) with cap, guaranteed, usage,
// `available` and `overCap`, with an ETag honoured by If-Match (412) and Idempotency-Key
// replays; quantity strings become exact integers and a left-out or null cap/guarantee means
// none. A decision raising a project's usage is judged at three levels, and a denial names
// every refusing level with exact numbers (scope project / organization / guarantees,
// requested, used, limit): the worked example (quota 100, A guaranteed 30 using 10: the others
// together can take 70, A can still grow to 30), two levels in one denial, holds counting
// against caps and guarantees, a replace counting only its difference, and lowering changes
// passing even over a cap. GET org quotas shows `guaranteed` and `freeForAnyProject` after each
// change. Refusals of PUT project quotas (guarantees-exceed-quota even with force,
// quota-below-usage and guarantee-unavailable unless forced, 400s), of PUT org quotas and of
// lowering a kind's default leave everything as it was and journal nothing; lowering a
// guarantee always passes. DELETE project refuses a non-empty project (409 project-not-empty
// with `live`) and with cascade=true ends everything (journaled with cascade: true, then
// project.deleted), frees its guarantee, makes it 404 everywhere, revokes its project-member
// tokens, and lets the id be used again for a fresh project. Expired holds count nowhere
// (project reads, shortfall). A few access cases: reader and project-member may read but not
// PUT project quotas; an org-admin of the organization may.
// Method: per engine, one fresh ledger on a ManualClock and the app; one ordered table of
// steps through `app.inject` (harness style), each organization used by one section so the
// numbers stay readable. A step marked `refused` is wrapped by a snapshot of everything the API
// shows (kinds, organizations, projects, org quotas, every project's quotas with its ETag,
// allocations, pending holds, journals, tokens) taken before and after: they must be equal
// (a refused step right after another one takes that one's snapshot after as its own before).
// Steps with `advanceMs` move the clock; steps with `run` do several requests at once.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocation, hold, rowOf } from '../support/bodies.js';
import { assertLedgerInvariants, engines } from '../support/engines.js';
import { closeApi, getJson, runCase, send, walkPages, type ApiCase, type ApiResponse } from './harness.js';
import {
  call,
  fullSnapshot,
  Gi,
  journalOf,
  lastRevisionOf,
  openClockedApi,
  setupCases,
  sumOfDeltas,
  usageCase,
  type ClockedApi,
} from './harness-extra.js';

const Ti = 1024 ** 4;
const kinds = ['cpu', 'gpus', 'ram', 'seats'];

const base = (organization: string, project: string) => `/v1/organizations/${organization}/projects/${project}`;
const pq = (organization: string, project: string) => `${base(organization, project)}/quotas`;
const allocs = (organization: string, project: string) => `${base(organization, project)}/allocations`;
const holdsOf = (organization: string, project: string) => `${base(organization, project)}/holds`;
const oq = (organization: string) => `/v1/organizations/${organization}/quotas`;

const gpus = (committed: number, reserved = 0) => [{ kind: 'gpus', committed, reserved }];

/** A project quota row with nothing set and nothing used. */
const emptyRow = (kind: string, available: number | null) => ({
  kind,
  displayName: { cpu: 'CPU', gpus: 'GPUs', ram: 'RAM', seats: 'Seats' }[kind],
  format: kind === 'ram' ? 'binary' : 'decimal',
  cap: null,
  guaranteed: 0,
  used: 0,
  committed: 0,
  reserved: 0,
  held: 0,
  available,
  overCap: false,
  updatedBy: null,
});

/** Checks the shape every project quotas answer has: ETag, every kind sorted, used = sum. */
function checkProjectQuotas(body: any, response: ApiResponse, organization: string, project: string): void {
  expect(response.headers.etag).toBe(`"${body.generation}"`);
  expect(body.organization).toBe(organization);
  expect(body.project).toBe(project);
  expect(Number.isInteger(body.generation)).toBe(true);
  expect((body.quotas as any[]).map((row) => row.kind)).toEqual(kinds);
  for (const row of body.quotas) {
    expect(row.used, `used of ${row.kind}`).toBe(row.committed + row.reserved + row.held);
    expect(row.overCap).toBe(row.cap !== null && row.used > row.cap);
  }
}

/** The `errors` array of a 400 names something containing `word` (field or message). */
function errorsMention(body: any, word: string): void {
  expect(Array.isArray(body?.errors) && body.errors.length > 0, `errors in ${JSON.stringify(body)}`).toBe(true);
  const named = (body.errors as { field: string; message: string }[]).some(
    (error) => String(error.field).includes(word) || String(error.message).includes(word),
  );
  expect(named, `no error mentions ${word}: ${JSON.stringify(body.errors)}`).toBe(true);
}

type RequestStep = ApiCase & {
  /** The request must change nothing the API shows. */
  refused?: boolean;
  /** Send with this remembered token instead of the admin token. */
  as?: string;
};
type Step = RequestStep | { name: string; advanceMs: number } | { name: string; run: () => Promise<void> };

describe.each(engines)('project quotas API on %s', (engine) => {
  let api: ClockedApi;
  const ids: Record<string, string> = {};
  const tokens: Record<string, { id: string; token: string }> = {};
  const saved: Record<string, any> = {};
  const remember = (name: string) => (body: any) => {
    ids[name] = body.id;
  };
  const bearer = (name: string) => ({ authorization: `Bearer ${tokens[name]!.token}` });

  /** Everything the API shows, including every project's quotas and ETag, and the tokens. */
  async function everything(app: FastifyInstance): Promise<unknown> {
    const all: any = await fullSnapshot(app);
    const projectQuotas: Record<string, unknown> = {};
    for (const tenant of all.tenants as any[]) {
      for (const project of tenant.projects as any[]) {
        const url = pq(tenant.organization.id, project.id);
        const response = await send(app, { method: 'GET', url });
        expect(response.status, `GET ${url}`).toBe(200);
        projectQuotas[`${tenant.organization.id}/${project.id}`] = { etag: response.headers.etag, body: response.json };
      }
    }
    const tokenList = await getJson(app, '/v1/tokens');
    return { ...all, projectQuotas, tokens: tokenList };
  }

  /** GET a project's quotas: checks the common shape and the listed fields per kind. */
  const projectUsage = (
    organization: string,
    project: string,
    expected: Record<string, Record<string, unknown>>,
    name?: string,
  ): RequestStep => ({
    name: name ?? `GET ${organization}/${project} quotas: ${JSON.stringify(expected)}`,
    method: 'GET',
    url: pq(organization, project),
    status: 200,
    json: (body, response) => {
      checkProjectQuotas(body, response, organization, project);
      for (const [kind, fields] of Object.entries(expected)) expect(rowOf(body, kind), kind).toMatchObject(fields);
    },
  });
  const orgUsage = (organization: string, expected: Record<string, Record<string, unknown>>, name?: string) =>
    usageCase(organization, expected, name ?? `GET ${organization} quotas: ${JSON.stringify(expected)}`);

  const putProjectQuota = (
    organization: string,
    project: string,
    quotas: unknown[],
    expected: Record<string, Record<string, unknown>>,
    options: { force?: boolean; name?: string } = {},
  ): RequestStep => ({
    name: options.name ?? `PUT ${organization}/${project} quotas ${JSON.stringify(quotas)}${options.force ? ' ?force=true' : ''} → 200`,
    method: 'PUT',
    url: `${pq(organization, project)}${options.force ? '?force=true' : ''}`,
    body: { quotas },
    status: 200,
    json: (body, response) => {
      checkProjectQuotas(body, response, organization, project);
      for (const [kind, fields] of Object.entries(expected)) expect(rowOf(body, kind), kind).toMatchObject(fields);
    },
  });

  const denied = (
    name: string,
    url: string,
    body: unknown,
    violations: unknown[],
    method: 'POST' | 'PUT' = 'POST',
  ): RequestStep => ({
    name,
    method,
    url,
    body,
    status: 409,
    problem: 'quota-exceeded',
    refused: true,
    json: (answer) => expect(answer.violations).toEqual(violations),
  });

  const lastEntry = (organization: string, expected: Record<string, unknown>, name: string): Step => ({
    name,
    run: async () => {
      const entry = (await journalOf(api.app, organization)).at(-1);
      expect(entry).toMatchObject(expected);
    },
  });

  beforeAll(async () => {
    api = await openClockedApi(engine);
  });
  afterAll(() => closeApi(api));

  const setup: Step[] = setupCases({
    kinds: {
      gpus: { displayName: 'GPUs' },
      ram: { displayName: 'RAM', format: 'binary', default: '1Ti' },
      cpu: { displayName: 'CPU' },
      seats: { displayName: 'Seats', default: 10 },
    },
    organizations: {
      acme: ['a', 'b', 'tmp'],
      ex: ['a', 'b', 'c'],
      caps: ['p', 'q', 'r'],
      gu: ['x', 'y', 'z'],
      oq: ['m', 'n', 'o'],
      dflt: ['s'],
      dflt2: ['s'],
      del: ['doomed', 'other'],
      exp: ['g', 'h'],
    },
    quotas: {
      acme: [{ kind: 'gpus', quantity: 100 }],
      ex: [{ kind: 'gpus', quantity: 100 }],
      caps: [{ kind: 'gpus', quantity: 20 }],
      gu: [{ kind: 'gpus', quantity: 50 }],
      oq: [{ kind: 'gpus', quantity: 100 }],
      dflt2: [{ kind: 'seats', quantity: 100 }],
      del: [{ kind: 'gpus', quantity: 50 }],
      exp: [{ kind: 'gpus', quantity: 20 }],
    },
  });

  // ---------------------------------------------------------------------------------------
  // GET/PUT project quotas (acme: gpus quota 100, ram default 1Ti, cpu unlimited, seats 10)
  const readWrite: Step[] = [
    {
      name: 'GET project quotas: every kind, sorted, every field; nothing set; ETag "0"',
      method: 'GET',
      url: pq('acme', 'a'),
      status: 200,
      json: (body, response) => {
        checkProjectQuotas(body, response, 'acme', 'a');
        expect(response.headers.etag).toBe('"0"');
        expect(body).toEqual({
          organization: 'acme',
          project: 'a',
          generation: 0,
          quotas: [emptyRow('cpu', null), emptyRow('gpus', 100), emptyRow('ram', Ti), emptyRow('seats', 10)],
        });
      },
    },
    {
      name: 'PUT gpus cap 40 guaranteed 10 and cpu cap "2k" → 200, the GET body, ETag "1"',
      method: 'PUT',
      url: pq('acme', 'a'),
      body: { quotas: [{ kind: 'gpus', cap: 40, guaranteed: 10 }, { kind: 'cpu', cap: '2k' }] },
      status: 200,
      json: (body, response) => {
        checkProjectQuotas(body, response, 'acme', 'a');
        expect(response.headers.etag).toBe('"1"');
        expect(body).toEqual({
          organization: 'acme',
          project: 'a',
          generation: 1,
          quotas: [
            { ...emptyRow('cpu', 2000), cap: 2000, updatedBy: 'admin' },
            { ...emptyRow('gpus', 40), cap: 40, guaranteed: 10, updatedBy: 'admin' },
            emptyRow('ram', Ti),
            emptyRow('seats', 10),
          ],
        });
        saved.afterFirstPut = body;
      },
    },
    {
      name: 'GET reads back exactly what PUT answered, ETag "1"',
      method: 'GET',
      url: pq('acme', 'a'),
      status: 200,
      json: (body, response) => {
        expect(response.headers.etag).toBe('"1"');
        expect(body).toEqual(saved.afterFirstPut);
      },
    },
    {
      name: 'the journal has a project-quota.set entry with before/after per kind, force false, no deltas',
      run: async () => {
        const entry = (await journalOf(api.app, 'acme')).at(-1)!;
        expect(entry).toMatchObject({ action: 'project-quota.set', project: 'a', principal: 'admin', deltas: [] });
        const changes = entry.changes as any;
        expect(changes.force).toBe(false);
        expect([...changes.quotas].sort((x: any, y: any) => (x.kind < y.kind ? -1 : 1))).toEqual([
          { kind: 'cpu', before: { cap: null, guaranteed: 0 }, after: { cap: 2000, guaranteed: 0 } },
          { kind: 'gpus', before: { cap: null, guaranteed: 0 }, after: { cap: 40, guaranteed: 10 } },
        ]);
      },
    },
    orgUsage('acme', {
      gpus: { quantity: 100, used: 0, free: 100, guaranteed: 10, freeForAnyProject: 90 },
      cpu: { quantity: null, guaranteed: 0, freeForAnyProject: null },
      ram: { quantity: Ti, guaranteed: 0, freeForAnyProject: Ti },
    }),
    projectUsage('acme', 'b', { gpus: { cap: null, guaranteed: 0, available: 90 } }, "b can take 90: a's guarantee keeps back 10"),
    putProjectQuota(
      'acme',
      'a',
      [{ kind: 'ram', cap: '2Ti', guaranteed: '1Gi' }],
      {
        ram: { cap: 2 * Ti, guaranteed: Gi, available: Ti, updatedBy: 'admin' },
        gpus: { cap: 40, guaranteed: 10 },
        cpu: { cap: 2000, guaranteed: 0 },
      },
      { name: 'PUT ram cap "2Ti" (above the org quota: allowed) guaranteed "1Gi"; kinds not listed keep theirs' },
    ),
    orgUsage('acme', { ram: { quantity: Ti, guaranteed: Gi, freeForAnyProject: Ti - Gi } }),
    projectUsage('acme', 'b', { ram: { available: Ti - Gi } }),
    putProjectQuota(
      'acme',
      'a',
      [{ kind: 'ram', cap: '1Gi' }],
      { ram: { cap: Gi, guaranteed: 0, available: Gi } },
      { name: 'PUT ram with cap "1Gi" and no guaranteed → the guarantee is removed (absent = none)' },
    ),
    putProjectQuota(
      'acme',
      'a',
      [{ kind: 'ram', cap: null, guaranteed: null }, { kind: 'cpu' }],
      {
        ram: { cap: null, guaranteed: 0, available: Ti },
        cpu: { cap: null, guaranteed: 0, available: null },
        gpus: { cap: 40, guaranteed: 10, available: 40 },
      },
      { name: 'PUT ram cap null guaranteed null, cpu with neither → no cap, no guarantee; cpu available null' },
    ),
    orgUsage('acme', { ram: { guaranteed: 0, freeForAnyProject: Ti }, gpus: { guaranteed: 10, freeForAnyProject: 90 } }),
    {
      name: 'the ETag counts the PUTs: "4"',
      method: 'GET',
      url: pq('acme', 'a'),
      status: 200,
      json: (body, response) => {
        expect(body.generation).toBe(4);
        expect(response.headers.etag).toBe('"4"');
      },
    },
    // If-Match
    {
      name: 'PUT with a stale If-Match "1" → 412 precondition-failed, currentGeneration 4',
      method: 'PUT',
      url: pq('acme', 'a'),
      headers: { 'if-match': '"1"' },
      body: { quotas: [{ kind: 'gpus', cap: 41, guaranteed: 10 }] },
      status: 412,
      problem: 'precondition-failed',
      refused: true,
      json: (body) => expect(body.currentGeneration).toBe(4),
    },
    {
      name: 'a stale If-Match is answered before a 409 (guarantee above the quota) → 412',
      method: 'PUT',
      url: pq('acme', 'a'),
      headers: { 'if-match': '"3"' },
      body: { quotas: [{ kind: 'gpus', guaranteed: 101 }] },
      status: 412,
      problem: 'precondition-failed',
      refused: true,
    },
    {
      name: 'PUT with the current If-Match "4" → 200, ETag "5"',
      method: 'PUT',
      url: pq('acme', 'a'),
      headers: { 'if-match': '"4"' },
      body: { quotas: [{ kind: 'gpus', cap: 41, guaranteed: 10 }] },
      status: 200,
      json: (body, response) => {
        expect(body.generation).toBe(5);
        expect(response.headers.etag).toBe('"5"');
        expect(rowOf(body, 'gpus')).toMatchObject({ cap: 41, guaranteed: 10, available: 41 });
      },
    },
    {
      name: 'the same If-Match "4" again is now stale → 412, currentGeneration 5',
      method: 'PUT',
      url: pq('acme', 'a'),
      headers: { 'if-match': '"4"' },
      body: { quotas: [{ kind: 'gpus', cap: 42, guaranteed: 10 }] },
      status: 412,
      problem: 'precondition-failed',
      refused: true,
      json: (body) => expect(body.currentGeneration).toBe(5),
    },
    // Idempotency-Key
    {
      name: 'Idempotency-Key: a retry replays the 200 (body, ETag) and changes nothing; another body → 422',
      run: async () => {
        const request = (cap: number) =>
          call(api.app, 'PUT', pq('acme', 'a'), { quotas: [{ kind: 'gpus', cap, guaranteed: 10 }] }, { 'idempotency-key': 'project-quota-1' });
        const revision = await lastRevisionOf(api.app, 'acme');
        const first = await request(45);
        expect(first.status, first.text).toBe(200);
        expect(first.json.generation).toBe(6);
        expect(first.headers.etag).toBe('"6"');
        expect(rowOf(first.json, 'gpus')).toMatchObject({ cap: 45, guaranteed: 10 });
        expect(first.headers['idempotent-replayed']).toBeUndefined();
        const after = await everything(api.app);
        expect(await lastRevisionOf(api.app, 'acme')).toBe(revision + 1);
        const again = await request(45);
        expect(again.status).toBe(200);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.text).toBe(first.text);
        expect(again.headers.etag).toBe('"6"');
        expect(await everything(api.app)).toEqual(after);
        const other = await request(46);
        expect(other.status, other.text).toBe(422);
        expect(other.json.type.endsWith('/idempotency-key-reused')).toBe(true);
        expect(await everything(api.app)).toEqual(after);
      },
    },
  ];

  // ---------------------------------------------------------------------------------------
  // Bad requests (acme/a): 400, nothing changes.
  const bad = (name: string, body: unknown, word?: string, url = pq('acme', 'a')): RequestStep => ({
    name: `${name} → 400 invalid-request`,
    method: 'PUT',
    url,
    body,
    status: 400,
    problem: 'invalid-request',
    refused: true,
    json: (answer) => (word === undefined ? errorsMention(answer, '') : errorsMention(answer, word)),
  });
  const badRequests: Step[] = [
    bad('guaranteed 6 > cap 5', { quotas: [{ kind: 'gpus', cap: 5, guaranteed: 6 }] }, 'guaranteed'),
    bad('guaranteed "2Gi" > cap "1Gi"', { quotas: [{ kind: 'ram', cap: '1Gi', guaranteed: '2Gi' }] }, 'guaranteed'),
    bad('guaranteed > cap with force=true', { quotas: [{ kind: 'gpus', cap: 5, guaranteed: 6 }] }, 'guaranteed', `${pq('acme', 'a')}?force=true`),
    bad('an unknown kind', { quotas: [{ kind: 'tpus', cap: 1 }] }, 'tpus'),
    bad('an unknown kind beside a valid one', { quotas: [{ kind: 'gpus', cap: 50 }, { kind: 'tpus', cap: 1 }] }, 'tpus'),
    bad('a kind listed twice', { quotas: [{ kind: 'gpus', cap: 1 }, { kind: 'gpus', cap: 2 }] }, 'gpus'),
    bad('an unknown field in an entry', { quotas: [{ kind: 'gpus', cap: 50, quantity: 3 }] }),
    bad('an unknown top-level field', { quotas: [{ kind: 'gpus', cap: 50 }], force: true }),
    bad('a negative cap', { quotas: [{ kind: 'gpus', cap: -1 }] }),
    bad('a negative guaranteed', { quotas: [{ kind: 'gpus', guaranteed: -1 }] }),
    bad('a fractional cap', { quotas: [{ kind: 'gpus', cap: 1.5 }] }),
    bad('a bad quantity string', { quotas: [{ kind: 'gpus', cap: '12XB' }] }),
    bad('an empty list', { quotas: [] }),
    bad('no quotas at all', {}),
    {
      name: 'an unknown project → 404 not-found',
      method: 'PUT',
      url: pq('acme', 'nope'),
      body: { quotas: [{ kind: 'gpus', cap: 1 }] },
      status: 404,
      problem: 'not-found',
      refused: true,
    },
    {
      name: 'GET quotas of an unknown project → 404 not-found',
      method: 'GET',
      url: pq('acme', 'nope'),
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'one refused kind refuses the whole request: ram cap "1Gi" + gpus guaranteed 101 → 409, ram unchanged',
      method: 'PUT',
      url: pq('acme', 'a'),
      body: { quotas: [{ kind: 'ram', cap: '1Gi' }, { kind: 'gpus', guaranteed: 101 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'gpus', guaranteed: 101, quantity: 100 }]),
    },
    projectUsage('acme', 'a', { ram: { cap: null, guaranteed: 0 }, gpus: { cap: 45, guaranteed: 10 } }, 'after all refusals: a has gpus cap 45 guaranteed 10, ram none'),
  ];

  // ---------------------------------------------------------------------------------------
  // Access: reader, project-member of a, org-admin of acme, org-admin of ex.
  const newToken = (name: string, body: Record<string, unknown>): RequestStep => ({
    name: `POST /v1/tokens ${JSON.stringify(body)} → 201`,
    method: 'POST',
    url: '/v1/tokens',
    body,
    status: 201,
    json: (answer) => {
      expect(typeof answer.token).toBe('string');
      tokens[name] = { id: answer.id, token: answer.token };
    },
  });
  const access: Step[] = [
    newToken('reader', { role: 'reader', organization: 'acme' }),
    newToken('memberA', { role: 'project-member', organization: 'acme', project: 'a' }),
    newToken('adminAcme', { role: 'org-admin', organization: 'acme' }),
    newToken('adminEx', { role: 'org-admin', organization: 'ex' }),
    { ...projectUsage('acme', 'a', { gpus: { cap: 45 } }, 'a reader reads project quotas → 200'), as: 'reader' },
    { ...projectUsage('acme', 'a', { gpus: { cap: 45 } }, 'a project-member of a reads its quotas → 200'), as: 'memberA' },
    {
      name: 'a project-member of a cannot see b → 404',
      as: 'memberA',
      method: 'GET',
      url: pq('acme', 'b'),
      status: 404,
      problem: 'not-found',
    },
    {
      name: 'a reader PUTs project quotas → 403 forbidden',
      as: 'reader',
      method: 'PUT',
      url: pq('acme', 'a'),
      body: { quotas: [{ kind: 'gpus', cap: 1 }] },
      status: 403,
      problem: 'forbidden',
      refused: true,
    },
    {
      name: 'a project-member PUTs its own project quotas → 403 forbidden',
      as: 'memberA',
      method: 'PUT',
      url: pq('acme', 'a'),
      body: { quotas: [{ kind: 'gpus', cap: 100, guaranteed: 50 }] },
      status: 403,
      problem: 'forbidden',
      refused: true,
    },
    {
      name: "an org-admin of another organization PUTs acme's project quotas → 404",
      as: 'adminEx',
      method: 'PUT',
      url: pq('acme', 'b'),
      body: { quotas: [{ kind: 'gpus', cap: 1 }] },
      status: 404,
      problem: 'not-found',
      refused: true,
    },
    {
      name: 'an org-admin of acme PUTs b quotas → 200, updatedBy token:<id>',
      as: 'adminAcme',
      method: 'PUT',
      url: pq('acme', 'b'),
      body: { quotas: [{ kind: 'gpus', cap: 50, guaranteed: 5 }] },
      status: 200,
      json: (body, response) => {
        checkProjectQuotas(body, response, 'acme', 'b');
        // b: cap 50 - 0; org 100 - 0 - a's shortfall 10 = 90
        expect(rowOf(body, 'gpus')).toMatchObject({ cap: 50, guaranteed: 5, available: 50, updatedBy: `token:${tokens.adminAcme!.id}` });
      },
    },
    orgUsage('acme', { gpus: { guaranteed: 15, freeForAnyProject: 85 } }),
    {
      name: 'a project-member deletes its own (empty) project → 403 forbidden',
      as: 'memberA',
      method: 'DELETE',
      url: base('acme', 'a'),
      status: 403,
      problem: 'forbidden',
      refused: true,
    },
    {
      name: 'a reader deletes a project → 403 forbidden',
      as: 'reader',
      method: 'DELETE',
      url: base('acme', 'tmp'),
      status: 403,
      problem: 'forbidden',
      refused: true,
    },
    { name: 'an org-admin of acme deletes the empty project tmp → 204', as: 'adminAcme', method: 'DELETE', url: base('acme', 'tmp'), status: 204 },
    { name: 'tmp is gone → 404', method: 'GET', url: base('acme', 'tmp'), status: 404, problem: 'not-found' },
  ];

  // ---------------------------------------------------------------------------------------
  // The worked example (ex: gpus quota 100; a guaranteed 30).
  const example: Step[] = [
    putProjectQuota('ex', 'a', [{ kind: 'gpus', guaranteed: 30 }], { gpus: { cap: null, guaranteed: 30, available: 100 } }),
    orgUsage('ex', { gpus: { quantity: 100, used: 0, free: 100, guaranteed: 30, freeForAnyProject: 70 } }),
    projectUsage('ex', 'b', { gpus: { available: 70 } }, 'b can take 70'),
    { name: 'a allocates 10', method: 'POST', url: allocs('ex', 'a'), body: allocation('ex-a1', gpus(10)), status: 201, json: remember('exA1') },
    orgUsage('ex', { gpus: { used: 10, committed: 10, free: 90, guaranteed: 30, freeForAnyProject: 70 } }, 'used 10, a still keeps back 20: freeForAnyProject 70'),
    projectUsage('ex', 'a', { gpus: { used: 10, committed: 10, available: 90 } }, 'a can take 90'),
    projectUsage('ex', 'b', { gpus: { used: 0, available: 70 } }, 'b can take 70'),
    denied('b allocates 71 → 409: guarantees level, used 10, limit 100 - 20 = 80', allocs('ex', 'b'), allocation('ex-b0', gpus(71)), [
      { kind: 'gpus', scope: 'guarantees', requested: 71, used: 10, limit: 80 },
    ]),
    { name: 'b holds 40 (a hold counts too)', method: 'POST', url: holdsOf('ex', 'b'), body: hold('ex-bh', gpus(40)), status: 201, json: remember('exBh') },
    orgUsage('ex', { gpus: { used: 50, held: 40, free: 50, guaranteed: 30, freeForAnyProject: 30 } }),
    projectUsage('ex', 'b', { gpus: { held: 40, used: 40, available: 30 } }),
    projectUsage('ex', 'c', { gpus: { used: 0, available: 30 } }),
    projectUsage('ex', 'a', { gpus: { used: 10, available: 50 } }),
    denied('c allocates 31 → 409 guarantees: used 50, limit 80', allocs('ex', 'c'), allocation('ex-c0', gpus(31)), [
      { kind: 'gpus', scope: 'guarantees', requested: 31, used: 50, limit: 80 },
    ]),
    { name: 'c allocates 30: the others together now use 70', method: 'POST', url: allocs('ex', 'c'), body: allocation('ex-c1', gpus(30)), status: 201, json: remember('exC1') },
    orgUsage('ex', { gpus: { used: 80, free: 20, guaranteed: 30, freeForAnyProject: 0 } }),
    projectUsage('ex', 'b', { gpus: { used: 40, available: 0 } }),
    projectUsage('ex', 'c', { gpus: { used: 30, available: 0 } }),
    projectUsage('ex', 'a', { gpus: { used: 10, available: 20 } }, 'a can still take 20 (up to its 30)'),
    denied('b allocates 1 more → 409 guarantees: used 80, limit 80', allocs('ex', 'b'), allocation('ex-b1', gpus(1)), [
      { kind: 'gpus', scope: 'guarantees', requested: 1, used: 80, limit: 80 },
    ]),
    denied('c holds 1 more → 409 guarantees (holds are judged the same)', holdsOf('ex', 'c'), hold('ex-ch', gpus(0, 1)), [
      { kind: 'gpus', scope: 'guarantees', requested: 1, used: 80, limit: 80 },
    ]),
    { name: 'a grows to 30 although the others took everything else → 201', method: 'POST', url: allocs('ex', 'a'), body: allocation('ex-a2', gpus(15, 5)), status: 201, json: remember('exA2') },
    orgUsage('ex', { gpus: { used: 100, committed: 55, reserved: 5, held: 40, free: 0, guaranteed: 30, freeForAnyProject: 0 } }),
    projectUsage('ex', 'a', { gpus: { used: 30, committed: 25, reserved: 5, available: 0 } }),
    denied('a allocates 1 beyond its guarantee with the quota full → 409 organization only', allocs('ex', 'a'), allocation('ex-a3', gpus(1)), [
      { kind: 'gpus', scope: 'organization', requested: 1, used: 100, limit: 100 },
    ]),
    { name: "release b's hold", method: 'POST', url: () => `${holdsOf('ex', 'b')}/${ids.exBh}/release`, status: 200 },
    orgUsage('ex', { gpus: { used: 60, held: 0, free: 40, guaranteed: 30, freeForAnyProject: 40 } }),
    { name: "delete a's second allocation: a uses 10 again", method: 'DELETE', url: () => `${allocs('ex', 'a')}/${ids.exA2}`, status: 204 },
    orgUsage('ex', { gpus: { used: 40, free: 60, guaranteed: 30, freeForAnyProject: 40 } }, 'used 40, a keeps back 20 again: freeForAnyProject 40'),
    projectUsage('ex', 'b', { gpus: { used: 0, available: 40 } }),
    denied('b allocates 41 → 409 guarantees: used 40, limit 80', allocs('ex', 'b'), allocation('ex-b2', gpus(41)), [
      { kind: 'gpus', scope: 'guarantees', requested: 41, used: 40, limit: 80 },
    ]),
    { name: 'b allocates 40 → 201', method: 'POST', url: allocs('ex', 'b'), body: allocation('ex-b3', gpus(40)), status: 201 },
    orgUsage('ex', { gpus: { used: 80, guaranteed: 30, freeForAnyProject: 0 } }),
  ];

  // ---------------------------------------------------------------------------------------
  // Caps (caps: gpus quota 20; p cap 10).
  const capsSteps: Step[] = [
    putProjectQuota('caps', 'p', [{ kind: 'gpus', cap: 10 }], { gpus: { cap: 10, guaranteed: 0, available: 10 } }),
    orgUsage('caps', { gpus: { guaranteed: 0, freeForAnyProject: 20 } }, 'a cap guarantees nothing: freeForAnyProject stays 20'),
    { name: 'p holds 8', method: 'POST', url: holdsOf('caps', 'p'), body: hold('caps-h1', gpus(8)), status: 201, json: remember('capsH1') },
    projectUsage('caps', 'p', { gpus: { held: 8, used: 8, committed: 0, reserved: 0, available: 2, overCap: false } }),
    denied('p allocates 3 → 409 project: the hold counts against the cap (used 8, limit 10)', allocs('caps', 'p'), allocation('caps-x', gpus(3)), [
      { kind: 'gpus', scope: 'project', requested: 3, used: 8, limit: 10 },
    ]),
    denied('p holds 3 more → 409 project (used 8, limit 10)', holdsOf('caps', 'p'), hold('caps-x', gpus(3)), [
      { kind: 'gpus', scope: 'project', requested: 3, used: 8, limit: 10 },
    ]),
    { name: 'p allocates reserved 2 → 201 (exactly the cap)', method: 'POST', url: allocs('caps', 'p'), body: allocation('caps-r1', gpus(0, 2)), status: 201, json: remember('capsR1') },
    projectUsage('caps', 'p', { gpus: { used: 10, held: 8, reserved: 2, available: 0, overCap: false } }),
    { name: 'release the hold', method: 'POST', url: () => `${holdsOf('caps', 'p')}/${ids.capsH1}/release`, status: 200 },
    projectUsage('caps', 'p', { gpus: { used: 2, held: 0, available: 8 } }),
    { name: 'p allocates 6 → 201', method: 'POST', url: allocs('caps', 'p'), body: allocation('caps-r2', gpus(6)), status: 201, json: remember('capsR2') },
    projectUsage('caps', 'p', { gpus: { used: 8, available: 2 } }),
    {
      name: 'replacing r2 6 → 8 counts only the difference 2: 8 + 2 = 10 → 200',
      method: 'PUT',
      url: () => `${allocs('caps', 'p')}/${ids.capsR2}`,
      body: allocation('caps-r2', gpus(8)),
      status: 200,
      json: (body) => expect(body.allocations).toEqual([{ kind: 'gpus', committed: 8, reserved: 0 }]),
    },
    projectUsage('caps', 'p', { gpus: { used: 10, committed: 8, reserved: 2, available: 0 } }),
    denied('replacing r2 8 → 9 → 409 project, requested 1 (the difference), used 10, limit 10', `${allocs('caps', 'p')}/ID:capsR2`, allocation('caps-r2', gpus(9)), [
      { kind: 'gpus', scope: 'project', requested: 1, used: 10, limit: 10 },
    ], 'PUT'),
    putProjectQuota('caps', 'q', [{ kind: 'gpus', cap: 5 }], { gpus: { cap: 5, available: 5 } }),
    putProjectQuota('caps', 'r', [{ kind: 'gpus', guaranteed: 6 }], { gpus: { guaranteed: 6, available: 10 } }),
    orgUsage('caps', { gpus: { used: 10, free: 10, guaranteed: 6, freeForAnyProject: 4 } }),
    projectUsage('caps', 'q', { gpus: { cap: 5, available: 4 } }, 'q can take min(5, 20 - 10 - 6) = 4'),
    denied('q allocates 12 → 409 naming two levels: project (used 0, limit 5) and organization (used 10, limit 20)', allocs('caps', 'q'), allocation('caps-q0', gpus(12)), [
      { kind: 'gpus', scope: 'project', requested: 12, used: 0, limit: 5 },
      { kind: 'gpus', scope: 'organization', requested: 12, used: 10, limit: 20 },
    ]),
    denied('q allocates 6 → 409 naming project (limit 5) and guarantees (used 10, limit 20 - 6 = 14)', allocs('caps', 'q'), allocation('caps-q0', gpus(6)), [
      { kind: 'gpus', scope: 'project', requested: 6, used: 0, limit: 5 },
      { kind: 'gpus', scope: 'guarantees', requested: 6, used: 10, limit: 14 },
    ]),
    denied(
      'q allocates ram "2Ti" and gpus 6 → 409, violations sorted by kind',
      allocs('caps', 'q'),
      allocation('caps-q0', [{ kind: 'ram', committed: '2Ti' }, { kind: 'gpus', committed: 6 }]),
      [
        { kind: 'gpus', scope: 'project', requested: 6, used: 0, limit: 5 },
        { kind: 'gpus', scope: 'guarantees', requested: 6, used: 10, limit: 14 },
        { kind: 'ram', scope: 'organization', requested: 2 * Ti, used: 0, limit: Ti },
      ],
    ),
    { name: 'q allocates 4 → 201 (10 + 4 + 6 = 20)', method: 'POST', url: allocs('caps', 'q'), body: allocation('caps-q1', gpus(4)), status: 201, json: remember('capsQ1') },
    orgUsage('caps', { gpus: { used: 14, free: 6, guaranteed: 6, freeForAnyProject: 0 } }),
    projectUsage('caps', 'r', { gpus: { used: 0, guaranteed: 6, available: 6 } }, 'r can still take its 6'),
    // A cap below usage
    {
      name: 'p cap 7 < its usage 10 → 409 quota-below-usage [{gpus, 7, 10}]',
      method: 'PUT',
      url: pq('caps', 'p'),
      body: { quotas: [{ kind: 'gpus', cap: 7 }] },
      status: 409,
      problem: 'quota-below-usage',
      refused: true,
      json: (body) => expect(body.belowUsage).toEqual([{ kind: 'gpus', quantity: 7, used: 10 }]),
    },
    {
      name: 'the same with ?force=false → 409 quota-below-usage',
      method: 'PUT',
      url: `${pq('caps', 'p')}?force=false`,
      body: { quotas: [{ kind: 'gpus', cap: 7 }] },
      status: 409,
      problem: 'quota-below-usage',
      refused: true,
    },
    putProjectQuota('caps', 'p', [{ kind: 'gpus', cap: 7 }], { gpus: { cap: 7, used: 10, overCap: true, available: 0 } }, { force: true }),
    lastEntry(
      'caps',
      {
        action: 'project-quota.set',
        project: 'p',
        changes: { quotas: [{ kind: 'gpus', before: { cap: 10, guaranteed: 0 }, after: { cap: 7, guaranteed: 0 } }], force: true },
        deltas: [],
      },
      'the forced PUT is journaled with force: true',
    ),
    projectUsage('caps', 'p', { gpus: { cap: 7, used: 10, overCap: true, available: 0 } }, 'GET shows overCap true'),
    denied('p allocates 1 → 409 project (used 10, limit 7) and guarantees (used 14, limit 14)', allocs('caps', 'p'), allocation('caps-x', gpus(1)), [
      { kind: 'gpus', scope: 'project', requested: 1, used: 10, limit: 7 },
      { kind: 'gpus', scope: 'guarantees', requested: 1, used: 14, limit: 14 },
    ]),
    {
      name: 'over its cap, p moves r2 from committed 8 to committed 4 + reserved 4 (no rise) → 200',
      method: 'PUT',
      url: () => `${allocs('caps', 'p')}/${ids.capsR2}`,
      body: allocation('caps-r2', gpus(4, 4)),
      status: 200,
    },
    {
      name: 'over its cap, p lowers r2 to 7 (usage 9, still over 7) → 200',
      method: 'PUT',
      url: () => `${allocs('caps', 'p')}/${ids.capsR2}`,
      body: allocation('caps-r2', gpus(7)),
      status: 200,
    },
    projectUsage('caps', 'p', { gpus: { cap: 7, used: 9, committed: 7, reserved: 2, overCap: true, available: 0 } }),
    { name: 'over its gpus cap, p allocates another kind (cpu 5) → 201', method: 'POST', url: allocs('caps', 'p'), body: allocation('caps-cpu', [{ kind: 'cpu', committed: 5 }]), status: 201 },
    denied('raising r2 7 → 8 → 409 project only (used 9, limit 7; 13 + 1 + 6 = 20 passes)', `${allocs('caps', 'p')}/ID:capsR2`, allocation('caps-r2', gpus(8)), [
      { kind: 'gpus', scope: 'project', requested: 1, used: 9, limit: 7 },
    ], 'PUT'),
    { name: 'delete r1 (reserved 2): usage 7 = cap', method: 'DELETE', url: () => `${allocs('caps', 'p')}/${ids.capsR1}`, status: 204 },
    projectUsage('caps', 'p', { gpus: { cap: 7, used: 7, overCap: false, available: 0 }, cpu: { used: 5, cap: null, available: null } }),
    orgUsage('caps', { gpus: { used: 11, guaranteed: 6, freeForAnyProject: 3 } }),
  ];

  // ---------------------------------------------------------------------------------------
  // Guarantee refusals (gu: gpus quota 50).
  const guSteps: Step[] = [
    putProjectQuota('gu', 'x', [{ kind: 'gpus', guaranteed: 30 }], { gpus: { guaranteed: 30, available: 50 } }),
    orgUsage('gu', { gpus: { guaranteed: 30, freeForAnyProject: 20 } }),
    {
      name: 'y guaranteed 21: sum 51 > 50 → 409 guarantees-exceed-quota',
      method: 'PUT',
      url: pq('gu', 'y'),
      body: { quotas: [{ kind: 'gpus', guaranteed: 21 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'gpus', guaranteed: 51, quantity: 50 }]),
    },
    {
      name: 'the same with ?force=true → still 409 guarantees-exceed-quota',
      method: 'PUT',
      url: `${pq('gu', 'y')}?force=true`,
      body: { quotas: [{ kind: 'gpus', guaranteed: 21 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'gpus', guaranteed: 51, quantity: 50 }]),
    },
    putProjectQuota('gu', 'y', [{ kind: 'gpus', guaranteed: 20 }], { gpus: { guaranteed: 20, available: 20 } }, { name: 'y guaranteed 20: sum exactly 50 → 200' }),
    orgUsage('gu', { gpus: { guaranteed: 50, freeForAnyProject: 0, free: 50 } }),
    projectUsage('gu', 'z', { gpus: { available: 0 } }, 'z can take nothing'),
    denied('z allocates 1 → 409 guarantees (used 0, limit 0)', allocs('gu', 'z'), allocation('gu-z0', gpus(1)), [
      { kind: 'gpus', scope: 'guarantees', requested: 1, used: 0, limit: 0 },
    ]),
    putProjectQuota('gu', 'y', [{ kind: 'gpus', guaranteed: 5 }], { gpus: { guaranteed: 5 } }, { name: 'lowering y to 5 → 200' }),
    orgUsage('gu', { gpus: { guaranteed: 35, freeForAnyProject: 15 } }),
    { name: 'z allocates 15 → 201', method: 'POST', url: allocs('gu', 'z'), body: allocation('gu-z1', gpus(15)), status: 201 },
    orgUsage('gu', { gpus: { used: 15, guaranteed: 35, freeForAnyProject: 0 } }),
    {
      name: 'y raised to 6: 15 used + 36 kept back > 50 → 409 guarantee-unavailable',
      method: 'PUT',
      url: pq('gu', 'y'),
      body: { quotas: [{ kind: 'gpus', guaranteed: 6 }] },
      status: 409,
      problem: 'guarantee-unavailable',
      refused: true,
      json: (body) => expect(body.unavailable).toEqual([{ kind: 'gpus', used: 15, keptBack: 36, quantity: 50 }]),
    },
    {
      name: 'z cap 10 < its usage 15 → 409 quota-below-usage',
      method: 'PUT',
      url: pq('gu', 'z'),
      body: { quotas: [{ kind: 'gpus', cap: 10 }] },
      status: 409,
      problem: 'quota-below-usage',
      refused: true,
      json: (body) => expect(body.belowUsage).toEqual([{ kind: 'gpus', quantity: 10, used: 15 }]),
    },
    {
      name: 'precedence: cap below usage (gpus) and a guarantee over the quota (ram "2Ti") → guarantees-exceed-quota',
      method: 'PUT',
      url: pq('gu', 'z'),
      body: { quotas: [{ kind: 'gpus', cap: 10 }, { kind: 'ram', guaranteed: '2Ti' }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'ram', guaranteed: 2 * Ti, quantity: Ti }]),
    },
    {
      name: 'precedence: cap below usage (gpus) and an unavailable guarantee (ram, after x uses 1Ti - 1Ki) → quota-below-usage',
      run: async () => {
        // Make ram unavailable for a new guarantee: x takes 1Ti - 1Ki of ram first.
        const taken = await call(api.app, 'POST', allocs('gu', 'x'), allocation('gu-xram', [{ kind: 'ram', committed: Ti - 1024 }]));
        expect(taken.status, taken.text).toBe(201);
        const before = await everything(api.app);
        const response = await call(api.app, 'PUT', pq('gu', 'z'), { quotas: [{ kind: 'gpus', cap: 10 }, { kind: 'ram', guaranteed: '2Ki' }] });
        expect(response.status, response.text).toBe(409);
        expect(response.json.type.endsWith('/quota-below-usage')).toBe(true);
        expect(response.json.belowUsage).toEqual([{ kind: 'gpus', quantity: 10, used: 15 }]);
        const alone = await call(api.app, 'PUT', pq('gu', 'z'), { quotas: [{ kind: 'ram', guaranteed: '2Ki' }] });
        expect(alone.status, alone.text).toBe(409);
        expect(alone.json.type.endsWith('/guarantee-unavailable')).toBe(true);
        expect(alone.json.unavailable).toEqual([{ kind: 'ram', used: Ti - 1024, keptBack: 2048, quantity: Ti }]);
        expect(await everything(api.app)).toEqual(before);
      },
    },
    putProjectQuota(
      'gu',
      'y',
      [{ kind: 'gpus', guaranteed: 6 }],
      // y: 50 - 15 - x's 30 = 5 (the forced guarantee cannot be fully met)
      { gpus: { guaranteed: 6, available: 5 } },
      { force: true, name: 'y raised to 6 with ?force=true → 200' },
    ),
    orgUsage('gu', { gpus: { used: 15, free: 35, guaranteed: 36, freeForAnyProject: 0 } }),
    projectUsage('gu', 'x', { gpus: { guaranteed: 30, available: 29 } }, 'x can take 50 - 15 - 6 = 29'),
    putProjectQuota('gu', 'y', [{ kind: 'gpus', guaranteed: 10 }], { gpus: { guaranteed: 10 } }, { force: true, name: 'y forced up to 10 (15 + 40 = 55 > 50)' }),
    putProjectQuota(
      'gu',
      'y',
      [{ kind: 'gpus', guaranteed: 8 }],
      { gpus: { guaranteed: 8 } },
      { name: 'lowering y to 8 without force passes though 15 + 38 = 53 is still above 50' },
    ),
    lastEntry(
      'gu',
      {
        action: 'project-quota.set',
        project: 'y',
        changes: { quotas: [{ kind: 'gpus', before: { cap: null, guaranteed: 10 }, after: { cap: null, guaranteed: 8 } }], force: false },
      },
      'the lowering is journaled',
    ),
    orgUsage('gu', { gpus: { used: 15, guaranteed: 38, freeForAnyProject: 0 } }),
    denied('z allocates 1 → 409 guarantees (used 15, limit 50 - 38 = 12)', allocs('gu', 'z'), allocation('gu-z2', gpus(1)), [
      { kind: 'gpus', scope: 'guarantees', requested: 1, used: 15, limit: 12 },
    ]),
    projectUsage('gu', 'y', { gpus: { guaranteed: 8, used: 0, available: 5 } }, "y's forced guarantee is not fully met: it can take 50 - 15 - 30 = 5"),
    denied('y allocates 6 → 409 guarantees (used 15, limit 50 - 30 = 20)', allocs('gu', 'y'), allocation('gu-y0', gpus(6)), [
      { kind: 'gpus', scope: 'guarantees', requested: 6, used: 15, limit: 20 },
    ]),
    { name: 'y allocates 5 → 201', method: 'POST', url: allocs('gu', 'y'), body: allocation('gu-y1', gpus(5)), status: 201 },
    orgUsage('gu', { gpus: { used: 20, guaranteed: 38, freeForAnyProject: 0 } }),
  ];

  // ---------------------------------------------------------------------------------------
  // Org quota PUT against guarantees (oq: gpus 100; m guaranteed 40, n guaranteed 20 using 10, o using 30).
  const oqSteps: Step[] = [
    putProjectQuota('oq', 'm', [{ kind: 'gpus', guaranteed: 40 }], { gpus: { guaranteed: 40 } }),
    putProjectQuota('oq', 'n', [{ kind: 'gpus', guaranteed: 20 }], { gpus: { guaranteed: 20 } }),
    { name: 'n allocates 10', method: 'POST', url: allocs('oq', 'n'), body: allocation('oq-n1', gpus(10)), status: 201 },
    { name: 'o allocates 30', method: 'POST', url: allocs('oq', 'o'), body: allocation('oq-o1', gpus(30)), status: 201 },
    orgUsage('oq', { gpus: { quantity: 100, used: 40, free: 60, guaranteed: 60, freeForAnyProject: 10 } }),
    {
      name: 'org quota 59 < guarantees 60 → 409 guarantees-exceed-quota',
      method: 'PUT',
      url: oq('oq'),
      body: { quotas: [{ kind: 'gpus', quantity: 59 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'gpus', guaranteed: 60, quantity: 59 }]),
    },
    {
      name: 'org quota 59 with ?force=true → still 409 guarantees-exceed-quota',
      method: 'PUT',
      url: `${oq('oq')}?force=true`,
      body: { quotas: [{ kind: 'gpus', quantity: 59 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
    },
    {
      name: 'org quota 30 (below used 40 too) with ?force=true → guarantees-exceed-quota first',
      method: 'PUT',
      url: `${oq('oq')}?force=true`,
      body: { quotas: [{ kind: 'gpus', quantity: 30 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
    },
    {
      name: 'org quota 89 < used 40 + kept back 50 → 409 guarantee-unavailable',
      method: 'PUT',
      url: oq('oq'),
      body: { quotas: [{ kind: 'gpus', quantity: 89 }] },
      status: 409,
      problem: 'guarantee-unavailable',
      refused: true,
      json: (body) => expect(body.unavailable).toEqual([{ kind: 'gpus', used: 40, keptBack: 50, quantity: 89 }]),
    },
    {
      name: 'org quota 90 = used + kept back → 200',
      method: 'PUT',
      url: oq('oq'),
      body: { quotas: [{ kind: 'gpus', quantity: 90 }] },
      status: 200,
      json: (body) => expect(rowOf(body, 'gpus')).toMatchObject({ quantity: 90, used: 40, free: 50, guaranteed: 60, freeForAnyProject: 0 }),
    },
    {
      name: 'org quota 89 with ?force=true → 200',
      method: 'PUT',
      url: `${oq('oq')}?force=true`,
      body: { quotas: [{ kind: 'gpus', quantity: 89 }] },
      status: 200,
      json: (body) =>
        expect(rowOf(body, 'gpus')).toMatchObject({ quantity: 89, used: 40, free: 49, overLimit: false, guaranteed: 60, freeForAnyProject: 0 }),
    },
    denied('o allocates 1 → 409 guarantees (used 40, limit 89 - 50 = 39)', allocs('oq', 'o'), allocation('oq-o2', gpus(1)), [
      { kind: 'gpus', scope: 'guarantees', requested: 1, used: 40, limit: 39 },
    ]),
    projectUsage('oq', 'm', { gpus: { available: 39 } }, 'm can take 89 - 40 - 10 = 39'),
    { name: 'm allocates 39 → 201 (its guarantee stays available)', method: 'POST', url: allocs('oq', 'm'), body: allocation('oq-m1', gpus(39)), status: 201 },
    orgUsage('oq', { gpus: { quantity: 89, used: 79, guaranteed: 60, freeForAnyProject: 0 } }),
    { name: 'o allocates ram "1Gi"', method: 'POST', url: allocs('oq', 'o'), body: allocation('oq-o3', [{ kind: 'ram', committed: '1Gi' }]), status: 201 },
    {
      name: 'org ram quota "512Mi" < used 1Gi (no guarantees) → 409 quota-below-usage',
      method: 'PUT',
      url: oq('oq'),
      body: { quotas: [{ kind: 'ram', quantity: '512Mi' }] },
      status: 409,
      problem: 'quota-below-usage',
      refused: true,
      json: (body) => expect(body.belowUsage).toEqual([{ kind: 'ram', quantity: 512 * 1024 ** 2, used: Gi }]),
    },
  ];

  // ---------------------------------------------------------------------------------------
  // Kind defaults (seats default 10; dflt has no explicit seats quota, dflt2 has 100).
  const defaults: Step[] = [
    putProjectQuota('dflt', 's', [{ kind: 'seats', guaranteed: 6 }], { seats: { guaranteed: 6, available: 10 } }),
    orgUsage('dflt', { seats: { quantity: 10, source: 'default', guaranteed: 6, freeForAnyProject: 4 } }),
    putProjectQuota('dflt2', 's', [{ kind: 'seats', guaranteed: 50 }], { seats: { guaranteed: 50, available: 100 } }),
    {
      name: "lowering seats' default to 5 below dflt's guarantees 6 → 409 guarantees-exceed-quota naming dflt",
      method: 'PUT',
      url: '/v1/resource-kinds/seats',
      body: { displayName: 'Seats', default: 5 },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'seats', organization: 'dflt', guaranteed: 6, quantity: 5 }]),
    },
    {
      name: "seats' default 6 → 200 (dflt2's 50 is under its own quota 100)",
      method: 'PUT',
      url: '/v1/resource-kinds/seats',
      body: { displayName: 'Seats', default: 6 },
      status: 200,
      json: (body) => expect(body.default).toBe(6),
    },
    orgUsage('dflt', { seats: { quantity: 6, source: 'default', guaranteed: 6, freeForAnyProject: 0 } }),
    orgUsage('dflt2', { seats: { quantity: 100, source: 'quota', guaranteed: 50, freeForAnyProject: 50 } }),
  ];

  // ---------------------------------------------------------------------------------------
  // Project deletion (del: gpus quota 50; doomed cap 40 guaranteed 20).
  const deletion: Step[] = [
    putProjectQuota('del', 'doomed', [{ kind: 'gpus', cap: 40, guaranteed: 20 }], { gpus: { cap: 40, guaranteed: 20, available: 40 } }),
    newToken('memberDoomed', { role: 'project-member', organization: 'del', project: 'doomed' }),
    { ...projectUsage('del', 'doomed', {}, 'the project-member token works'), as: 'memberDoomed' },
    { name: 'doomed allocates 5', method: 'POST', url: allocs('del', 'doomed'), body: allocation('del-1', gpus(5)), status: 201, json: remember('del1') },
    { name: 'doomed allocates reserved 2', method: 'POST', url: allocs('del', 'doomed'), body: allocation('del-2', gpus(0, 2)), status: 201, json: remember('del2') },
    { name: 'doomed holds 3', method: 'POST', url: holdsOf('del', 'doomed'), body: hold('del-h', gpus(3)), status: 201, json: remember('delH') },
    orgUsage('del', { gpus: { used: 10, committed: 5, reserved: 2, held: 3, guaranteed: 20, freeForAnyProject: 30 } }),
    {
      name: 'other guaranteed 35: 20 + 35 > 50 → 409 guarantees-exceed-quota',
      method: 'PUT',
      url: pq('del', 'other'),
      body: { quotas: [{ kind: 'gpus', guaranteed: 35 }] },
      status: 409,
      problem: 'guarantees-exceed-quota',
      refused: true,
      json: (body) => expect(body.overGuaranteed).toEqual([{ kind: 'gpus', guaranteed: 55, quantity: 50 }]),
    },
    {
      name: 'DELETE doomed → 409 project-not-empty, live {allocations 2, holds 1}',
      method: 'DELETE',
      url: base('del', 'doomed'),
      status: 409,
      problem: 'project-not-empty',
      refused: true,
      json: (body) => expect(body.live).toEqual({ allocations: 2, holds: 1 }),
    },
    {
      name: 'DELETE doomed?cascade=false → 409 project-not-empty',
      method: 'DELETE',
      url: `${base('del', 'doomed')}?cascade=false`,
      status: 409,
      problem: 'project-not-empty',
      refused: true,
      json: (body) => expect(body.live).toEqual({ allocations: 2, holds: 1 }),
    },
    { ...projectUsage('del', 'doomed', { gpus: { used: 10 } }, 'after the refusals the project-member token still works'), as: 'memberDoomed' },
    {
      name: 'DELETE doomed?cascade=true → 204; journal: allocation.deleted ×2 and hold.released (cascade true), then project.deleted',
      run: async () => {
        const revision = await lastRevisionOf(api.app, 'del');
        const response = await call(api.app, 'DELETE', `${base('del', 'doomed')}?cascade=true`);
        expect(response.status, response.text).toBe(204);
        expect(response.text).toBe('');
        const entries = (await journalOf(api.app, 'del')).filter((entry) => entry.revision > revision);
        expect(entries).toHaveLength(4);
        for (const entry of entries) expect(entry.project).toBe('doomed');
        const ended = entries.slice(0, 3).map((entry) => ({
          action: entry.action,
          subject: entry.subject,
          cascade: (entry.changes as any).cascade,
          deltas: entry.deltas,
        }));
        const bySubject = (a: { subject?: string | null }, b: { subject?: string | null }) => (String(a.subject) < String(b.subject) ? -1 : 1);
        expect([...ended].sort(bySubject)).toEqual(
          [
            { action: 'allocation.deleted', subject: ids.del1, cascade: true, deltas: [{ kind: 'gpus', committed: -5, reserved: 0, held: 0 }] },
            { action: 'allocation.deleted', subject: ids.del2, cascade: true, deltas: [{ kind: 'gpus', committed: 0, reserved: -2, held: 0 }] },
            { action: 'hold.released', subject: ids.delH, cascade: true, deltas: [{ kind: 'gpus', committed: 0, reserved: 0, held: -3 }] },
          ].sort(bySubject),
        );
        expect(entries[3]).toMatchObject({
          action: 'project.deleted',
          project: 'doomed',
          principal: 'admin',
          changes: { cascade: true, ended: { allocations: 2, holds: 1 } },
          deltas: [],
        });
        expect(sumOfDeltas(await journalOf(api.app, 'del')).gpus).toEqual({ committed: 0, reserved: 0, held: 0 });
      },
    },
    orgUsage('del', { gpus: { used: 0, committed: 0, reserved: 0, held: 0, free: 50, guaranteed: 0, freeForAnyProject: 50 } }, 'usage and guarantee are gone'),
    ...(
      [
        ['GET the project', 'GET', () => base('del', 'doomed')],
        ['GET its quotas', 'GET', () => pq('del', 'doomed')],
        ['GET its allocations', 'GET', () => allocs('del', 'doomed')],
        ['GET its holds', 'GET', () => holdsOf('del', 'doomed')],
        ['GET one of its allocations', 'GET', () => `${allocs('del', 'doomed')}/${ids.del1}`],
        ['GET its hold', 'GET', () => `${holdsOf('del', 'doomed')}/${ids.delH}`],
        ['DELETE it again', 'DELETE', () => base('del', 'doomed')],
        ['DELETE it again with cascade', 'DELETE', () => `${base('del', 'doomed')}?cascade=true`],
      ] as const
    ).map(([what, method, url]): Step => ({ name: `after deletion: ${what} → 404`, method, url, status: 404, problem: 'not-found', refused: method !== 'GET' })),
    {
      name: 'after deletion: POST an allocation → 404',
      method: 'POST',
      url: allocs('del', 'doomed'),
      body: allocation('del-3', gpus(1)),
      status: 404,
      problem: 'not-found',
      refused: true,
    },
    {
      name: 'after deletion: POST a hold → 404',
      method: 'POST',
      url: holdsOf('del', 'doomed'),
      body: hold('del-4', gpus(1)),
      status: 404,
      problem: 'not-found',
      refused: true,
    },
    {
      name: 'after deletion: PUT its quotas → 404',
      method: 'PUT',
      url: pq('del', 'doomed'),
      body: { quotas: [{ kind: 'gpus', cap: 1 }] },
      status: 404,
      problem: 'not-found',
      refused: true,
    },
    {
      name: 'the project list no longer shows it',
      method: 'GET',
      url: '/v1/organizations/del/projects',
      status: 200,
      json: (body) => expect(body.items.map((project: any) => project.id)).toEqual(['other']),
    },
    {
      name: 'its project-member token is revoked: 401 even on a route it could use before',
      run: async () => {
        for (const url of [pq('del', 'doomed'), '/v1/resource-kinds']) {
          const response = await send(api.app, { method: 'GET', url, headers: bearer('memberDoomed') });
          expect(response.status, `${url}: ${response.text}`).toBe(401);
        }
        const list = await getJson(api.app, '/v1/tokens');
        const record = list.items.find((token: any) => token.id === tokens.memberDoomed!.id);
        expect(record?.revokedAt, JSON.stringify(record)).toEqual(expect.any(String));
        const others = list.items.filter((token: any) => token.id !== tokens.memberDoomed!.id);
        for (const token of others) expect(token.revokedAt, token.id).toBeNull();
      },
    },
    putProjectQuota('del', 'other', [{ kind: 'gpus', guaranteed: 35 }], { gpus: { guaranteed: 35, available: 50 } }, { name: 'the freed guarantee lets other take 35 → 200' }),
    orgUsage('del', { gpus: { used: 0, guaranteed: 35, freeForAnyProject: 15 } }),
    { name: 'PUT the same project id again → 201 (a fresh project)', method: 'PUT', url: base('del', 'doomed'), body: {}, status: 201 },
    {
      name: 'the fresh project has no cap, no guarantee, no usage',
      method: 'GET',
      url: pq('del', 'doomed'),
      status: 200,
      json: (body, response) => {
        checkProjectQuotas(body, response, 'del', 'doomed');
        expect(body.quotas).toEqual([emptyRow('cpu', null), emptyRow('gpus', 15), emptyRow('ram', Ti), emptyRow('seats', 6)]);
      },
    },
    { name: 'the fresh project has no allocations', method: 'GET', url: allocs('del', 'doomed'), status: 200, json: (body) => expect(body).toEqual({ items: [], nextCursor: null }) },
    { name: 'the fresh project has no holds', method: 'GET', url: holdsOf('del', 'doomed'), status: 200, json: (body) => expect(body).toEqual({ items: [], nextCursor: null }) },
    {
      name: 'the old token stays revoked for the fresh project',
      run: async () => {
        const response = await send(api.app, { method: 'GET', url: pq('del', 'doomed'), headers: bearer('memberDoomed') });
        expect(response.status, response.text).toBe(401);
      },
    },
    orgUsage('del', { gpus: { used: 0, guaranteed: 35, freeForAnyProject: 15 } }, 're-creating the project brings nothing back'),
    {
      name: 'DELETE the empty fresh project without cascade, with an Idempotency-Key → 204; a retry replays 204',
      run: async () => {
        const revision = await lastRevisionOf(api.app, 'del');
        const first = await call(api.app, 'DELETE', base('del', 'doomed'), undefined, { 'idempotency-key': 'delete-doomed' });
        expect(first.status, first.text).toBe(204);
        const again = await call(api.app, 'DELETE', base('del', 'doomed'), undefined, { 'idempotency-key': 'delete-doomed' });
        expect(again.status, again.text).toBe(204);
        expect(again.headers['idempotent-replayed']).toBe('true');
        const entries = (await journalOf(api.app, 'del')).filter((entry) => entry.revision > revision);
        expect(entries).toHaveLength(1);
        expect(entries[0]).toMatchObject({
          action: 'project.deleted',
          project: 'doomed',
          changes: { cascade: false, ended: { allocations: 0, holds: 0 } },
          deltas: [],
        });
        const plain = await call(api.app, 'DELETE', base('del', 'doomed'));
        expect(plain.status, plain.text).toBe(404);
      },
    },
    {
      name: 'DELETE an unknown project → 404',
      method: 'DELETE',
      url: base('del', 'nope'),
      status: 404,
      problem: 'not-found',
      refused: true,
    },
    {
      name: 'DELETE a project of an unknown organization → 404',
      method: 'DELETE',
      url: `${base('nope', 'doomed')}?cascade=true`,
      status: 404,
      problem: 'not-found',
      refused: true,
    },
  ];

  // ---------------------------------------------------------------------------------------
  // Expired holds (exp: gpus quota 20; g guaranteed 10).
  const expiry: Step[] = [
    putProjectQuota('exp', 'g', [{ kind: 'gpus', guaranteed: 10 }], { gpus: { guaranteed: 10, available: 20 } }),
    { name: 'g holds 15 for 60 s', method: 'POST', url: holdsOf('exp', 'g'), body: hold('exp-g', gpus(15), 60), status: 201 },
    { name: 'h holds 3 for 60 s', method: 'POST', url: holdsOf('exp', 'h'), body: hold('exp-h', gpus(3), 60), status: 201 },
    projectUsage('exp', 'g', { gpus: { held: 15, used: 15, available: 2 } }),
    projectUsage('exp', 'h', { gpus: { held: 3, used: 3, available: 2 } }),
    orgUsage('exp', { gpus: { used: 18, held: 18, guaranteed: 10, freeForAnyProject: 2 } }),
    { name: 'the clock passes both holds’ expiry (t = 61 s)', advanceMs: 61_000 },
    projectUsage(
      'exp',
      'h',
      { gpus: { held: 0, used: 0, available: 10 } },
      "first request after expiry: h's quotas count neither hold; g's guarantee keeps back 10 → available 10",
    ),
    projectUsage('exp', 'g', { gpus: { held: 0, used: 0, guaranteed: 10, available: 20 } }, "g's quotas no longer count its expired hold"),
    orgUsage('exp', { gpus: { used: 0, held: 0, free: 20, guaranteed: 10, freeForAnyProject: 10 } }),
    {
      // Not wrapped as `refused`: the decision may resolve the expired holds (journaling hold.expired).
      ...denied("h allocates 11 → 409 guarantees (used 0, limit 10): g's expired hold does not cover its guarantee", allocs('exp', 'h'), allocation('exp-h1', gpus(11)), [
        { kind: 'gpus', scope: 'guarantees', requested: 11, used: 0, limit: 10 },
      ]),
      refused: false,
    },
    projectUsage('exp', 'h', { gpus: { used: 0, available: 10 } }, 'the denial allocated nothing'),
    { name: 'h allocates 10 → 201', method: 'POST', url: allocs('exp', 'h'), body: allocation('exp-h2', gpus(10)), status: 201 },
    orgUsage('exp', { gpus: { used: 10, guaranteed: 10, freeForAnyProject: 0 } }),
    projectUsage('exp', 'g', { gpus: { used: 0, available: 10 } }),
  ];

  const steps: Step[] = [...setup, ...readWrite, ...badRequests, ...access, ...example, ...capsSteps, ...guSteps, ...oqSteps, ...defaults, ...deletion, ...expiry];

  // What `everything` showed at the end of the step just run, if it was a refused step that
  // passed: nothing has happened since, so it is the next refused step's snapshot before.
  let unchanged: unknown;
  const stepTest = (name: string, body: (seen: unknown) => unknown) =>
    it(name, async () => {
      const seen = unchanged;
      unchanged = undefined;
      await body(seen);
    });

  for (const step of steps) {
    if ('advanceMs' in step) {
      stepTest(step.name, () => api.clock.advance(step.advanceMs));
    } else if ('run' in step) {
      stepTest(step.name, step.run);
    } else {
      stepTest(step.name, async (seen) => {
        const url = step.url;
        // `ID:<name>` in a URL stands for a remembered id.
        const resolved: RequestStep = {
          ...step,
          url: () => {
            const raw = typeof url === 'function' ? url() : url;
            return raw.replace(/ID:([A-Za-z0-9]+)/g, (_, name: string) => ids[name]!);
          },
          ...(step.as ? { headers: { ...step.headers, ...bearer(step.as) } } : {}),
        };
        const before = step.refused ? (seen ?? (await everything(api.app))) : undefined;
        await runCase(api.app, resolved);
        if (!step.refused) return;
        const after = await everything(api.app);
        expect(after).toEqual(before);
        unchanged = after;
      });
    }
  }

  it('counters equal the live allocations and holds, projects included', async () => {
    expect(await api.test.ledger.verifyCounters()).toEqual([]);
    await assertLedgerInvariants(api.test.ledger, ['acme', 'ex', 'caps', 'gu', 'oq', 'dflt', 'dflt2', 'del', 'exp']);
  });

  it('every organization lists only its live projects', async () => {
    const projects = (await walkPages(api.app, '/v1/organizations/acme/projects', 100)).items.map((project: any) => project.id);
    expect(projects).toEqual(['a', 'b']);
  });
});
