// Goal: the quota rule has one definition (`refusals` in src/domain/decision.ts, with
// `effectiveLimit` and `shortfallOf`), and every way a decision is asked for answers by it: a
// table of cases (an organization's limit: its quota, the kind's default or unlimited; the
// asking project's cap and guarantee; other projects' guarantees; usage, pending holds among
// it, and states a forced change left over a limit; a request that raises, lowers or only
// reshuffles usage) gives, per case, "allowed" or exactly the violations (scope, used,
// requested, limit), and every path agrees with it.
// Method: each case runs (a) through the pure `refusals` (its levels computed from the case
// with `effectiveLimit` and `shortfallOf`; for a rise, also that it is allowed exactly when it
// fits in `availableTo`), and, per engine, on one ledger with an app over it, each path on an
// organization and kind of its own set up alike: (b) the library's lone call (createAllocation,
// replaceAllocation, deleteAllocation or createHold), (c) `ledger.batch`, independent (between
// two entries on another kind, which must pass whatever the case says) and atomic (after one,
// which must be applied or not with the case), (d) the HTTP route through `inject`, and its
// batch route. A case's state is made with everything unlimited (usage first, then caps and
// guarantees, then the quota, then the default, forced where they go below usage), and read
// back before the request, so the case describes what the ledger holds. After each request the
// organization's usage moved by the request if it was allowed, and not at all if refused.
// test/unit/decision.test.ts covers the other pure rules; test/ledger/model.property.test.ts
// compares random sequences with a model of its own; this table is the named edges.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantityMax } from '../../src/domain/constants.js';
import { availableTo, effectiveLimit, refusals, shortfallOf, type KindLevels } from '../../src/domain/decision.js';
import { AllotError, type Violation } from '../../src/domain/errors.js';
import type { Ledger } from '../../src/index.js';
import { closeApi, openApi, send, type ApiHarness } from '../api/harness.js';
import { engines } from '../support/engines.js';

// The table's vocabulary.

type Limit = { quota: number; default?: number } | { default: number } | 'unlimited';
const quota = (quantity: number, kindDefault?: number): Limit =>
  kindDefault === undefined ? { quota: quantity } : { quota: quantity, default: kindDefault };
const byDefault = (kindDefault: number): Limit => ({ default: kindDefault });
const unlimited: Limit = 'unlimited';

/** A project's state: live usage (one allocation), a pending hold, its cap and guarantee. */
interface ProjectState {
  used?: number;
  held?: number;
  cap?: number;
  guaranteed?: number;
}

/** What the asking project `p` requests; replace and delete act on its one live allocation. */
type Request =
  | { op: 'create'; committed: number; reserved: number }
  | { op: 'hold'; amount: number }
  | { op: 'replace'; committed: number; reserved: number }
  | { op: 'delete' };
const create = (committed: number, reserved = 0): Request => ({ op: 'create', committed, reserved });
const hold = (amount: number): Request => ({ op: 'hold', amount });
const replaceWith = (committed: number, reserved = 0): Request => ({ op: 'replace', committed, reserved });
const remove: Request = { op: 'delete' };

type Expected = Omit<Violation, 'kind'>;
const allowed = 'allowed' as const;
const cap = (used: number, requested: number, limit: number): Expected => ({ scope: 'project', used, requested, limit });
const organization = (used: number, requested: number, limit: number): Expected => ({ scope: 'organization', used, requested, limit });
const guarantees = (used: number, requested: number, limit: number): Expected => ({ scope: 'guarantees', used, requested, limit });

interface Case {
  name: string;
  limit: Limit;
  /** The project that asks; `o` and `q` are other projects of the organization. */
  p: ProjectState;
  o?: ProjectState;
  q?: ProjectState;
  request: Request;
  expect: typeof allowed | Expected[];
}

const max = quantityMax;

const cases: Case[] = [
  // The organization's limit: its quota, else the kind's default, else unlimited (quantityMax).
  { name: 'a rise up to the quota exactly', limit: quota(10), p: { used: 4 }, request: create(6), expect: allowed },
  { name: 'a rise one past the quota', limit: quota(10), p: { used: 4 }, request: create(7), expect: [organization(4, 7, 10)] },
  { name: 'reserved counts as committed does', limit: quota(10), p: { used: 4 }, request: create(3, 4), expect: [organization(4, 7, 10)] },
  { name: "other projects' usage counts toward the quota", limit: quota(10), p: { used: 2 }, o: { used: 5 }, request: create(4), expect: [organization(7, 4, 10)] },
  { name: 'a quota of 0 refuses any rise', limit: quota(0), p: {}, request: create(1), expect: [organization(0, 1, 0)] },
  { name: "without a quota, up to the kind's default", limit: byDefault(10), p: {}, o: { used: 5 }, request: create(5), expect: allowed },
  { name: "without a quota, past the kind's default", limit: byDefault(10), p: {}, o: { used: 5 }, request: create(6), expect: [organization(5, 6, 10)] },
  { name: 'a quota above the default is the limit', limit: quota(20, 10), p: { used: 12 }, request: create(8), expect: allowed },
  { name: 'a quota below the default is the limit', limit: quota(5, 10), p: {}, request: create(6), expect: [organization(0, 6, 5)] },
  { name: 'unlimited: up to quantityMax', limit: unlimited, p: { used: 5 }, request: create(max - 5), expect: allowed },
  { name: 'unlimited is quantityMax, not more', limit: unlimited, p: { used: 5 }, request: create(max - 4), expect: [organization(5, max - 4, max)] },
  // Holds: a new hold is judged as an allocation is; pending holds count as usage.
  { name: 'a hold up to the quota', limit: quota(10), p: { used: 4 }, request: hold(6), expect: allowed },
  { name: 'a hold past the quota', limit: quota(10), p: { used: 4 }, request: hold(7), expect: [organization(4, 7, 10)] },
  { name: 'pending holds count toward the quota', limit: quota(10), p: { used: 4, held: 3 }, request: create(4), expect: [organization(7, 4, 10)] },
  // A replace is judged by its difference to the allocation it replaces.
  { name: 'a replace that rises to the quota', limit: quota(10), p: { used: 6 }, request: replaceWith(10), expect: allowed },
  { name: 'a replace that rises past the quota, by its difference', limit: quota(10), p: { used: 6 }, request: replaceWith(11), expect: [organization(6, 5, 10)] },
  // The asking project's cap.
  { name: 'a rise up to the cap', limit: quota(100), p: { used: 8, cap: 10 }, request: create(2), expect: allowed },
  { name: 'a rise past the cap', limit: quota(100), p: { used: 8, cap: 10 }, request: create(3), expect: [cap(8, 3, 10)] },
  { name: "the cap counts the project's own usage only", limit: quota(100), p: { cap: 10 }, o: { used: 50 }, request: create(10), expect: allowed },
  { name: 'a cap of 0 refuses any rise', limit: quota(100), p: { cap: 0 }, request: create(1), expect: [cap(0, 1, 0)] },
  { name: 'a cap holds in an unlimited organization', limit: unlimited, p: { used: 8, cap: 10 }, request: create(3), expect: [cap(8, 3, 10)] },
  { name: 'pending holds count toward the cap', limit: quota(100), p: { used: 5, held: 3, cap: 10 }, request: create(3), expect: [cap(8, 3, 10)] },
  { name: 'past the cap and the quota: both named, the project first', limit: quota(10), p: { used: 6, cap: 8 }, o: { used: 3 }, request: create(3), expect: [cap(6, 3, 8), organization(9, 3, 10)] },
  // Guarantees: what other projects' guarantees keep back unused is not for this project.
  { name: "up to what another project's unused guarantee leaves", limit: quota(20), p: { used: 5 }, o: { guaranteed: 10 }, request: create(5), expect: allowed },
  { name: "past what another project's unused guarantee leaves", limit: quota(20), p: { used: 5 }, o: { guaranteed: 10 }, request: create(6), expect: [guarantees(5, 6, 10)] },
  { name: 'a guarantee in full use keeps nothing back', limit: quota(20), p: {}, o: { used: 10, guaranteed: 10 }, request: create(10), expect: allowed },
  { name: 'only the unused part of a guarantee is kept back', limit: quota(20), p: {}, o: { used: 4, guaranteed: 10 }, request: create(11), expect: [guarantees(4, 11, 14)] },
  { name: "a project's own guarantee keeps nothing back from it", limit: quota(10), p: { guaranteed: 10 }, request: create(10), expect: allowed },
  { name: 'own and other guarantees: up to what the other leaves', limit: quota(10), p: { used: 2, guaranteed: 6 }, o: { guaranteed: 4 }, request: create(4), expect: allowed },
  { name: 'own and other guarantees: past what the other leaves', limit: quota(10), p: { used: 2, guaranteed: 6 }, o: { guaranteed: 4 }, request: create(5), expect: [guarantees(2, 5, 6)] },
  { name: "several projects' shortfalls add up: up to what they leave", limit: quota(20), p: { used: 5 }, o: { used: 1, guaranteed: 3 }, q: { guaranteed: 4 }, request: create(8), expect: allowed },
  { name: "several projects' shortfalls add up: past what they leave", limit: quota(20), p: { used: 5 }, o: { used: 1, guaranteed: 3 }, q: { guaranteed: 4 }, request: create(9), expect: [guarantees(6, 9, 14)] },
  { name: 'past the quota itself: the organization is named, not the guarantees', limit: quota(10), p: { used: 8 }, o: { guaranteed: 5 }, request: create(3), expect: [organization(8, 3, 10)] },
  { name: 'past the cap and the guarantees: both named', limit: quota(20), p: { used: 6, cap: 8 }, o: { used: 2, guaranteed: 10 }, request: create(5), expect: [cap(6, 5, 8), guarantees(8, 5, 12)] },
  { name: "guarantees under the kind's default", limit: byDefault(10), p: {}, o: { guaranteed: 4 }, request: create(7), expect: [guarantees(0, 7, 6)] },
  { name: 'guarantees in an unlimited organization', limit: unlimited, p: {}, o: { guaranteed: 100 }, request: create(max - 99), expect: [guarantees(0, max - 99, max - 100)] },
  { name: 'a hold against guarantees', limit: quota(20), p: { used: 5 }, o: { guaranteed: 10 }, request: hold(6), expect: [guarantees(5, 6, 10)] },
  // Over a limit after a forced change: what does not raise usage passes, any rise is refused.
  { name: 'quota forced below usage: a decrease passes, though still over', limit: quota(5), p: { used: 8 }, request: replaceWith(6), expect: allowed },
  { name: 'quota forced below usage: a reshuffle to reserved passes', limit: quota(5), p: { used: 8 }, request: replaceWith(4, 4), expect: allowed },
  { name: 'quota forced below usage: a delete passes', limit: quota(5), p: { used: 8 }, request: remove, expect: allowed },
  { name: 'quota forced below usage: a rise of 1 is refused', limit: quota(5), p: { used: 8 }, request: create(1), expect: [organization(8, 1, 5)] },
  { name: 'quota forced below usage: a replace that rises is refused', limit: quota(5), p: { used: 8 }, request: replaceWith(9), expect: [organization(8, 1, 5)] },
  { name: 'quota forced below usage: a hold is refused', limit: quota(5), o: { used: 8 }, p: {}, request: hold(1), expect: [organization(8, 1, 5)] },
  { name: 'default lowered below usage: a rise is refused', limit: byDefault(5), p: { used: 8 }, request: create(1), expect: [organization(8, 1, 5)] },
  { name: 'default lowered below usage: a decrease passes', limit: byDefault(5), p: { used: 8 }, request: replaceWith(7), expect: allowed },
  { name: 'cap forced below usage: a decrease passes', limit: quota(100), p: { used: 5, cap: 3 }, request: replaceWith(4), expect: allowed },
  { name: 'cap forced below usage: a rise is refused', limit: quota(100), p: { used: 5, cap: 3 }, request: create(1), expect: [cap(5, 1, 3)] },
  { name: 'cap and quota forced below usage: a delete passes', limit: quota(4), p: { used: 5, cap: 3 }, request: remove, expect: allowed },
  { name: 'a guarantee forced past what is free: others may not rise', limit: quota(10), p: { used: 8 }, o: { guaranteed: 5 }, request: create(1), expect: [guarantees(8, 1, 5)] },
  { name: 'a guarantee forced past what is free: others may decrease', limit: quota(10), p: { used: 8 }, o: { guaranteed: 5 }, request: replaceWith(7), expect: allowed },
  { name: 'a guarantee forced past what is free: its project may rise to the quota', limit: quota(10), p: { guaranteed: 5 }, o: { used: 8 }, request: create(2), expect: allowed },
  { name: 'a guarantee forced past what is free: its project not past the quota', limit: quota(10), p: { guaranteed: 5 }, o: { used: 8 }, request: create(3), expect: [organization(8, 3, 10)] },
];

// The case, read.

const projectsOf = (c: Case) =>
  (['p', 'o', 'q'] as const).flatMap((id) => (c[id] === undefined ? [] : [{ id, state: c[id]! }]));
const usedOf = (state: ProjectState) => (state.used ?? 0) + (state.held ?? 0);
const limitOf = (limit: Limit) =>
  limit === 'unlimited' ? effectiveLimit(null, null) : effectiveLimit('quota' in limit ? limit.quota : null, limit.default ?? null);

/** What the rule is asked: the levels of the kind as the case sets them up. */
function levelsOf(c: Case, kind: string): KindLevels {
  const projects = projectsOf(c);
  return {
    kind,
    projectUsed: usedOf(c.p),
    cap: c.p.cap ?? null,
    guaranteed: c.p.guaranteed ?? 0,
    organizationUsed: projects.reduce((sum, { state }) => sum + usedOf(state), 0),
    limit: limitOf(c.limit),
    shortfall: projects.reduce((sum, { state }) => sum + shortfallOf(state.guaranteed ?? 0, usedOf(state)), 0),
  };
}

/** How much the request moves the project's usage. */
function deltaOf(c: Case): number {
  const request = c.request;
  switch (request.op) {
    case 'create':
      return request.committed + request.reserved;
    case 'hold':
      return request.amount;
    case 'replace':
      return request.committed + request.reserved - (c.p.used ?? 0);
    case 'delete':
      return -(c.p.used ?? 0);
  }
}

const expectedOf = (c: Case, kind: string) =>
  c.expect === allowed ? allowed : c.expect.map((violation) => ({ kind, ...violation }));

describe('the rule cases', () => {
  it('are well formed: replace and delete act on live usage, guarantees fit the limit', () => {
    for (const c of cases) {
      if (c.request.op === 'replace' || c.request.op === 'delete') expect(c.p.used ?? 0, c.name).toBeGreaterThan(0);
      const guaranteed = projectsOf(c).reduce((sum, { state }) => sum + (state.guaranteed ?? 0), 0);
      expect(guaranteed, c.name).toBeLessThanOrEqual(limitOf(c.limit));
    }
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases)('(a) refusals: $name', (c) => {
    const levels = levelsOf(c, 'gpus');
    const delta = deltaOf(c);
    const found = refusals(levels, delta);
    expect(found.length === 0 ? allowed : found).toEqual(expectedOf(c, 'gpus'));
    // What a project is told it may still take is what the rule lets it take.
    if (delta > 0) expect(found.length === 0, `availableTo = ${availableTo(levels)}`).toBe(delta <= availableTo(levels));
  });
});

// The paths through the ledger and the API.

type Verdict = typeof allowed | Violation[] | string;

/** A refusal's verdict: its violations for quota-exceeded; anything else as text, to fail loudly. */
function verdictOfError(error: unknown): Verdict {
  if (error instanceof AllotError) return error.code === 'quota-exceeded' ? error.extensions.violations ?? [] : `${error.code}: ${error.detail}`;
  throw error;
}

function verdictOfResponse(status: number, body: any): Verdict {
  if (status >= 200 && status < 300) return allowed;
  if (status === 409 && body?.type === '/problems/quota-exceeded') return body.violations;
  return `${status}: ${JSON.stringify(body)}`;
}

/** A case's organization and kind as one path sees them. */
interface Setup {
  organization: string;
  kind: string;
  /** The id of project p's live allocation (replace and delete act on it). */
  existing: string | undefined;
}

const spare = 'spare';
const neighbour = (id: string) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: spare, committed: 1 }] });

/** The request's body in the library's and the API's terms. */
function bodyOf(c: Case, kind: string) {
  const request = c.request;
  switch (request.op) {
    case 'create':
      return { resource: { kind: 'vm', id: 'request' }, allocations: [{ kind, committed: request.committed, reserved: request.reserved }] };
    case 'hold':
      return { resource: { kind: 'vm', id: 'request' }, allocations: [{ kind, committed: request.amount, reserved: 0 }], ttlSeconds: 3600 };
    case 'replace':
      return { resource: { kind: 'vm', id: 'p-live' }, allocations: [{ kind, committed: request.committed, reserved: request.reserved }] };
    case 'delete':
      return undefined;
  }
}

/** The request as a batch entry (the library's and the API's batch take the same entries). */
function entryOf(c: Case, setup: Setup): any {
  const body = bodyOf(c, setup.kind);
  switch (c.request.op) {
    case 'create':
      return { op: 'allocation.create', project: 'p', body };
    case 'hold':
      return { op: 'hold.create', project: 'p', body };
    case 'replace':
      return { op: 'allocation.replace', project: 'p', id: setup.existing, body };
    case 'delete':
      return { op: 'allocation.delete', project: 'p', id: setup.existing };
  }
}

const usageOf = async (ledger: Ledger, organization: string, kind: string) =>
  (await ledger.getQuotas(organization)).find((row) => row.kind === kind)?.used ?? 0;

describe.each(engines)('the rule cases on %s', (engine) => {
  let api: ApiHarness;
  let ledger: Ledger;

  beforeAll(async () => {
    api = await openApi(engine);
    ledger = api.test.ledger;
    await ledger.putKind(spare, { displayName: 'Spare', default: null });
  });
  afterAll(async () => closeApi(api));

  /** Makes the case's state in a new organization, with the kind unlimited but by its quota. */
  async function setUp(c: Case, organization: string, kind: string): Promise<Setup> {
    await ledger.putOrganization(organization, {});
    let existing: string | undefined;
    for (const { id, state } of projectsOf(c)) {
      await ledger.putProject(organization, id, {});
      if (state.used) {
        const made = await ledger.createAllocation(organization, id, {
          resource: { kind: 'vm', id: `${id}-live` },
          allocations: [{ kind, committed: state.used }],
        });
        if (id === 'p') existing = made.id;
      }
      if (state.held) {
        await ledger.createHold(organization, id, {
          resource: { kind: 'vm', id: `${id}-held` },
          allocations: [{ kind, committed: state.held }],
          ttlSeconds: 3600,
        });
      }
    }
    for (const { id, state } of projectsOf(c)) {
      if (state.cap !== undefined || state.guaranteed !== undefined) {
        await ledger.setProjectQuotaSet(organization, id, [{ kind, cap: state.cap ?? null, guaranteed: state.guaranteed ?? null }], { force: true });
      }
    }
    if (c.limit !== 'unlimited' && 'quota' in c.limit) {
      await ledger.setQuotas(organization, [{ kind, quantity: c.limit.quota }], { force: true });
    }
    return { organization, kind, existing };
  }

  /** The ledger holds what the case says, as the organization and project p show it. */
  async function expectState(c: Case, { organization, kind }: Setup): Promise<void> {
    const levels = levelsOf(c, kind);
    const row = (await ledger.getQuotas(organization)).find((quotaRow) => quotaRow.kind === kind);
    expect(row && { used: row.used, quantity: row.quantity, guaranteed: row.guaranteed }, `${organization}: the organization's state`).toEqual({
      used: levels.organizationUsed,
      quantity: c.limit === 'unlimited' ? null : levels.limit,
      guaranteed: projectsOf(c).reduce((sum, { state }) => sum + (state.guaranteed ?? 0), 0),
    });
    const own = (await ledger.getProjectQuotaSet(organization, 'p')).quotas.find((quotaRow) => quotaRow.kind === kind);
    expect(own && { used: own.used, cap: own.cap, guaranteed: own.guaranteed, available: own.available }, `${organization}: project p's state`).toEqual({
      used: levels.projectUsed,
      cap: levels.cap,
      guaranteed: levels.guaranteed,
      available: c.limit === 'unlimited' && levels.cap === null ? null : availableTo(levels),
    });
  }

  /** The lone library call. */
  async function lone(c: Case, { organization, kind, existing }: Setup): Promise<Verdict> {
    const body = bodyOf(c, kind) as any;
    try {
      if (c.request.op === 'create') await ledger.createAllocation(organization, 'p', body);
      else if (c.request.op === 'hold') await ledger.createHold(organization, 'p', body);
      else if (c.request.op === 'replace') await ledger.replaceAllocation(organization, 'p', existing!, body);
      else await ledger.deleteAllocation(organization, 'p', existing!);
      return allowed;
    } catch (error) {
      return verdictOfError(error);
    }
  }

  /** An independent batch: the request between two entries on another kind, which pass. */
  async function independent(c: Case, setup: Setup): Promise<Verdict> {
    const result = await ledger.batch(setup.organization, [
      { op: 'allocation.create', project: 'p', body: neighbour('before') },
      entryOf(c, setup),
      { op: 'allocation.create', project: 'p', body: neighbour('after') },
    ]);
    const [before, request, after] = result.results;
    expect([before!.status, after!.status], `${c.name}: the neighbours in the batch`).toEqual(['applied', 'applied']);
    return request!.status === 'applied' ? allowed : request!.status === 'refused' ? verdictOfError(request!.error) : 'not-applied';
  }

  /** An atomic batch: an entry on another kind, then the request; both or neither. */
  async function atomic(c: Case, setup: Setup): Promise<Verdict> {
    const result = await ledger.batch(setup.organization, [{ op: 'allocation.create', project: 'p', body: neighbour('first') }, entryOf(c, setup)], {
      mode: 'atomic',
    });
    const [first, request] = result.results;
    const verdict = request!.status === 'applied' ? allowed : request!.status === 'refused' ? verdictOfError(request!.error) : 'not-applied';
    expect(first!.status, `${c.name}: the first entry of the atomic batch`).toBe(verdict === allowed ? 'applied' : 'not-applied');
    return verdict;
  }

  /** The request's own route. */
  async function http(c: Case, { organization, kind, existing }: Setup): Promise<Verdict> {
    const base = `/v1/organizations/${organization}/projects/p`;
    const body = bodyOf(c, kind);
    const response = await send(
      api.app,
      c.request.op === 'create'
        ? { method: 'POST', url: `${base}/allocations`, body }
        : c.request.op === 'hold'
          ? { method: 'POST', url: `${base}/holds`, body }
          : c.request.op === 'replace'
            ? { method: 'PUT', url: `${base}/allocations/${existing}`, body }
            : { method: 'DELETE', url: `${base}/allocations/${existing}` },
    );
    return verdictOfResponse(response.status, response.json);
  }

  /** The batch route, independent: the request alone. */
  async function httpBatch(c: Case, setup: Setup): Promise<Verdict> {
    const response = await send(api.app, {
      method: 'POST',
      url: `/v1/organizations/${setup.organization}/batch`,
      body: { mode: 'independent', operations: [entryOf(c, setup)] },
    });
    expect(response.status, `${c.name}: the batch route: ${response.text.slice(0, 300)}`).toBe(200);
    const [result] = response.json.results;
    return verdictOfResponse(result.status, result.body);
  }

  const paths = { lone, independent, atomic, http, 'http-batch': httpBatch };

  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    // One kind per case (its default is the case's), one organization per path.
    const kind = `k${i}`;
    await ledger.putKind(kind, { displayName: kind, default: null });
    // The organizations are set up side by side (their decisions share group commits).
    const setups = new Map(
      await Promise.all(Object.keys(paths).map(async (path) => [path, await setUp(c, `r${i}-${path}`, kind)] as const)),
    );
    if (c.limit !== 'unlimited' && c.limit.default !== undefined) {
      await ledger.putKind(kind, { displayName: kind, default: c.limit.default });
    }
    const verdicts: Record<string, { verdict: Verdict; moved: number }> = {};
    for (const [path, run] of Object.entries(paths)) {
      const setup = setups.get(path)!;
      await expectState(c, setup);
      const before = await usageOf(ledger, setup.organization, kind);
      const verdict = await run(c, setup);
      verdicts[path] = { verdict, moved: (await usageOf(ledger, setup.organization, kind)) - before };
    }
    // Every path gives the table's answer, and moves usage by the request only if allowed.
    const expected = expectedOf(c, kind);
    const moved = expected === allowed ? deltaOf(c) : 0;
    expect(verdicts).toEqual(Object.fromEntries(Object.keys(paths).map((path) => [path, { verdict: expected, moved }])));
  });
});
