// Goal: holds do what the spec promises over HTTP. POST …/holds takes ttlSeconds from 1 s to
// 7 days (0 and 604801 are 400) and answers 201 with Location, ETag, status "pending" and
// expiresAt; a hold counts as used at once (GET quotas shows `held` beside committed and
// reserved, used = committed + reserved + held), is refused with 409 quota-exceeded like an
// allocation, and holds its referenced resource (409 duplicate-allocation both ways). It then
// resolves exactly once: confirm (all, or less per kind with the rest freed, never more: 409
// confirm-exceeds-hold) into an allocation with the same id; release (frees everything); or
// expiry when the clock passes its ttl, with no request: a decision right after expiry does
// not count it even though no sweep ran, and GET shows "expired". Any later confirm/release is
// 409 hold-already-resolved naming the resolution. The list shows pending holds only; GET one
// shows any status; unknown ids, allocation ids on hold routes and pending hold ids on
// allocation routes are 404. Under concurrency, one resource gets one hold, and racing
// confirms/releases (or an expiry) resolve a hold exactly once.
// Method: per engine, a fresh ledger on a ManualClock and the app; one ordered table of
// `ApiCase`s through `app.inject` (harness style), remembering ids from earlier answers, with
// GET quotas cases after every change and clock steps (`advanceMs`) where time matters. No
// sweeper runs: every expiry here is found by a request. The races are `Promise.all` over
// `inject`, checked by their answers and by the journal entries they added.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocation } from '../support/bodies.js';
import { assertLedgerInvariants, engines } from '../support/engines.js';
import { closeApi, expectFieldError, expectProblem, getJson, runCase, uuidPattern, walkPages, type ApiCase } from './harness.js';
import {
  call,
  Gi,
  journalOf,
  lastRevisionOf,
  openClockedApi,
  setupCases,
  unknownId,
  urls,
  usageCase,
  type ClockedApi,
} from './harness-extra.js';

const start = Date.parse('2026-01-01T00:00:00Z');
/** The ISO time `seconds` after the ManualClock's start. */
const at = (seconds: number) => new Date(start + seconds * 1000).toISOString();

const web = urls('acme', 'web');
const api2 = urls('acme', 'api');
const hold = (id: string, allocations: unknown[], ttlSeconds = 60) => ({
  resource: { kind: 'vm', id },
  allocations,
  ttlSeconds,
});
const usage = (expected: Parameters<typeof usageCase>[1], name?: string) => usageCase('acme', expected, name);

/** A step is a request, or moving the ManualClock forward. */
type Step = ApiCase | { name: string; advanceMs: number };

describe.each(engines)('holds API on %s', (engine) => {
  let api: ClockedApi;
  const ids: Record<string, string> = {};
  const seen: Record<string, any> = {};
  const holdUrl = (name: string, suffix = '') => () => `${web.holds}/${ids[name]}${suffix}`;
  const allocationUrl = (name: string) => () => `${web.allocations}/${ids[name]}`;
  const remember = (name: string) => (body: any) => {
    ids[name] = body.id;
    seen[name] = body;
  };
  const resolved = (name: string, resolution: string): ApiCase[] => [
    { name: `confirm ${name} again → 409 hold-already-resolved (${resolution})`, method: 'POST', url: holdUrl(name, '/confirm'), status: 409, problem: 'hold-already-resolved', json: (body) => expect(body.resolution).toBe(resolution) },
    { name: `release ${name} → 409 hold-already-resolved (${resolution})`, method: 'POST', url: holdUrl(name, '/release'), status: 409, problem: 'hold-already-resolved', json: (body) => expect(body.resolution).toBe(resolution) },
  ];
  const pendingList = (...names: string[]): ApiCase => ({
    name: `GET holds lists pending holds only: [${names.join(', ')}]`,
    method: 'GET',
    url: web.holds,
    status: 200,
    json: (body) => {
      expect(body.items.map((h: any) => h.id)).toEqual(names.map((name) => ids[name]).sort());
      for (const item of body.items) expect(item.status).toBe('pending');
      expect(body.nextCursor).toBeNull();
    },
  });

  beforeAll(async () => {
    api = await openClockedApi(engine);
  });
  afterAll(() => closeApi(api));

  const setup = setupCases({
    kinds: {
      gpus: { displayName: 'GPUs' },
      ram: { displayName: 'RAM', format: 'binary' },
      cpu: { displayName: 'CPU' },
    },
    organizations: { acme: ['web', 'api'] },
    quotas: { acme: [{ kind: 'gpus', quantity: 10 }, { kind: 'ram', quantity: '4Gi' }] },
  });

  const ttl: Step[] = [
    ...[
      { label: '0', value: 0 },
      { label: '604801 (7 days + 1 s)', value: 604_801 },
      { label: '-1', value: -1 },
      { label: '1.5', value: 1.5 },
      { label: 'the string "60"', value: '60' },
    ].map(({ label, value }): ApiCase => ({
      name: `ttlSeconds ${label} → 400 naming ttlSeconds`,
      method: 'POST',
      url: web.holds,
      body: hold('ttl', [{ kind: 'cpu', committed: 1 }], value as number),
      status: 400,
      problem: 'invalid-request',
      json: (body) => expectFieldError(body, 'ttlSeconds'),
    })),
    {
      name: 'no ttlSeconds → 400 naming ttlSeconds',
      method: 'POST',
      url: web.holds,
      body: allocation('ttl', [{ kind: 'cpu', committed: 1 }]),
      status: 400,
      problem: 'invalid-request',
      json: (body) => expectFieldError(body, 'ttlSeconds'),
    },
    usage({ cpu: { committed: 0, reserved: 0, held: 0 } }, 'the refused holds hold nothing'),
    {
      name: 'ttlSeconds 604800 (7 days) → 201, expiring 7 days later',
      method: 'POST',
      url: web.holds,
      body: hold('ttl-max', [{ kind: 'cpu', committed: 1 }], 604_800),
      status: 201,
      json: (body) => {
        expect(body.expiresAt).toBe(at(604_800));
        remember('ttlMax')(body);
      },
    },
    {
      name: 'ttlSeconds 1 → 201, expiring 1 s later',
      method: 'POST',
      url: web.holds,
      body: hold('ttl-min', [{ kind: 'cpu', committed: 1 }], 1),
      status: 201,
      json: (body) => {
        expect(body.expiresAt).toBe(at(1));
        remember('ttlMin')(body);
      },
    },
    usage({ cpu: { committed: 0, reserved: 0, held: 2, used: 2 } }),
    { name: 'release the 7-day hold', method: 'POST', url: holdUrl('ttlMax', '/release'), status: 200 },
    { name: 'release the 1-second hold', method: 'POST', url: holdUrl('ttlMin', '/release'), status: 200 },
    usage({ cpu: { committed: 0, reserved: 0, held: 0, used: 0 } }),
  ];

  const create: Step[] = [
    {
      name: 'POST hold → 201 with Location, ETag "1", status pending, expiresAt = now + ttl',
      method: 'POST',
      url: web.holds,
      body: hold('vm-1', [{ kind: 'gpus', committed: 3, reserved: 1 }]),
      status: 201,
      json: (body, response) => {
        expect(body.id).toMatch(uuidPattern);
        expect(response.headers.location).toBe(`${web.holds}/${body.id}`);
        expect(response.headers.etag).toBe('"1"');
        expect(body).toEqual({
          id: body.id,
          organization: 'acme',
          project: 'web',
          resource: { kind: 'vm', id: 'vm-1' },
          allocations: [{ kind: 'gpus', committed: 3, reserved: 1 }],
          generation: 1,
          createdBy: 'admin',
          updatedBy: 'admin',
          createdAt: at(0),
          updatedAt: at(0),
          status: 'pending',
          expiresAt: at(60),
          resolvedAt: null,
        });
        remember('vm1')(body);
      },
    },
    {
      name: 'GET the Location → the same hold, ETag "1"',
      method: 'GET',
      url: holdUrl('vm1'),
      status: 200,
      json: (body, response) => {
        expect(body).toEqual(seen.vm1);
        expect(response.headers.etag).toBe('"1"');
      },
    },
    usage({ gpus: { committed: 0, reserved: 0, held: 4, used: 4, free: 6 } }, 'the hold counts at once, as held (not committed or reserved)'),
    {
      name: 'GET holds → the pending hold',
      method: 'GET',
      url: web.holds,
      status: 200,
      json: (body) => expect(body).toEqual({ items: [seen.vm1], nextCursor: null }),
    },
    {
      name: 'a pending hold is not an allocation: GET allocations is empty',
      method: 'GET',
      url: web.allocations,
      status: 200,
      json: (body) => expect(body).toEqual({ items: [], nextCursor: null }),
    },
    {
      name: 'POST allocation vm-2 gpus 5 → 201',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-2', [{ kind: 'gpus', committed: 5 }]),
      status: 201,
      json: remember('vm2'),
    },
    usage({ gpus: { committed: 5, reserved: 0, held: 4, used: 9, free: 1 } }),
    {
      name: 'a hold beyond the quota → 409 quota-exceeded naming the held usage',
      method: 'POST',
      url: web.holds,
      body: hold('vm-3', [{ kind: 'gpus', reserved: 2 }]),
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 2, used: 9, limit: 10 }]),
    },
    {
      name: 'an allocation that only the hold makes too much → 409 quota-exceeded',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-3', [{ kind: 'gpus', committed: 2 }]),
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 2, used: 9, limit: 10 }]),
    },
    {
      name: 'a hold up to the limit exactly → 201',
      method: 'POST',
      url: web.holds,
      body: hold('vm-3', [{ kind: 'gpus', committed: 1 }]),
      status: 201,
      json: remember('vm3'),
    },
    usage({ gpus: { committed: 5, reserved: 0, held: 5, used: 10, free: 0 } }),
    // The referenced resource of a pending hold is taken, and a hold needs a free one.
    {
      name: 'POST allocation for the resource of a pending hold → 409 duplicate-allocation naming the hold',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-1', [{ kind: 'cpu', committed: 1 }]),
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm1),
    },
    {
      name: 'POST hold for the resource of a pending hold → 409 duplicate-allocation',
      method: 'POST',
      url: web.holds,
      body: hold('vm-1', [{ kind: 'cpu', committed: 1 }]),
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm1),
    },
    {
      name: 'the same from another project of the organization → 409 duplicate-allocation',
      method: 'POST',
      url: api2.holds,
      body: hold('vm-1', [{ kind: 'cpu', committed: 1 }]),
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm1),
    },
    {
      name: 'POST hold for the resource of a live allocation → 409 duplicate-allocation naming it',
      method: 'POST',
      url: web.holds,
      body: hold('vm-2', [{ kind: 'cpu', committed: 1 }]),
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm2),
    },
    {
      name: 'PUT an allocation onto the resource of a pending hold → 409 duplicate-allocation',
      method: 'PUT',
      url: allocationUrl('vm2'),
      body: allocation('vm-1', [{ kind: 'gpus', committed: 5 }]),
      status: 409,
      problem: 'duplicate-allocation',
      json: (body) => expect(body.existingAllocationId).toBe(ids.vm1),
    },
    usage({ gpus: { committed: 5, held: 5, used: 10 }, cpu: { committed: 0, held: 0, used: 0 } }, 'the refusals changed nothing'),
  ];

  const notFound = (name: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: () => string, body?: unknown): ApiCase => ({
    name,
    method,
    url,
    ...(body === undefined ? {} : { body }),
    status: 404,
    problem: 'not-found',
  });
  const routes: Step[] = [
    notFound('GET an unknown hold → 404', 'GET', () => `${web.holds}/${unknownId}`),
    notFound('confirm an unknown hold → 404', 'POST', () => `${web.holds}/${unknownId}/confirm`),
    notFound('release an unknown hold → 404', 'POST', () => `${web.holds}/${unknownId}/release`),
    notFound('GET a hold by an unknown id → 404', 'GET', () => `${web.holds}/01a20000-0000-7000-8000-000000000000`),
    notFound('GET an allocation id on the holds route → 404', 'GET', holdUrl('vm2')),
    notFound('confirm an allocation id → 404', 'POST', holdUrl('vm2', '/confirm')),
    notFound('release an allocation id → 404', 'POST', holdUrl('vm2', '/release')),
    notFound('GET a pending hold id on the allocations route → 404', 'GET', allocationUrl('vm1')),
    notFound('PUT a pending hold id on the allocations route → 404', 'PUT', allocationUrl('vm1'), allocation('vm-1', [{ kind: 'gpus', committed: 1 }])),
    notFound('DELETE a pending hold id on the allocations route → 404', 'DELETE', allocationUrl('vm1')),
    notFound('GET a hold through another project → 404', 'GET', () => `${api2.holds}/${ids.vm1}`),
    notFound('confirm a hold through another project → 404', 'POST', () => `${api2.holds}/${ids.vm1}/confirm`),
    notFound('release a hold through another project → 404', 'POST', () => `${api2.holds}/${ids.vm1}/release`),
    notFound('GET holds of an unknown project → 404', 'GET', () => urls('acme', 'nope').holds),
    notFound('POST hold to an unknown project → 404', 'POST', () => urls('acme', 'nope').holds, hold('vm-x', [{ kind: 'cpu', committed: 1 }])),
    notFound('POST hold to an unknown organization → 404', 'POST', () => urls('nope', 'web').holds, hold('vm-x', [{ kind: 'cpu', committed: 1 }])),
    {
      name: 'the hold is still pending, generation 1, holding all it held',
      method: 'GET',
      url: holdUrl('vm1'),
      status: 200,
      json: (body) => expect(body).toEqual(seen.vm1),
    },
    usage({ gpus: { committed: 5, held: 5, used: 10 } }),
  ];

  const confirm: Step[] = [
    {
      name: 'confirm for more than held of a kind → 409 confirm-exceeds-hold',
      method: 'POST',
      url: holdUrl('vm1', '/confirm'),
      body: { allocations: [{ kind: 'gpus', committed: 5 }] },
      status: 409,
      problem: 'confirm-exceeds-hold',
    },
    {
      name: 'confirm for more than held in committed + reserved → 409 confirm-exceeds-hold',
      method: 'POST',
      url: holdUrl('vm1', '/confirm'),
      body: { allocations: [{ kind: 'gpus', committed: 3, reserved: 2 }] },
      status: 409,
      problem: 'confirm-exceeds-hold',
    },
    {
      name: 'confirm a kind the hold does not hold → 409 confirm-exceeds-hold',
      method: 'POST',
      url: holdUrl('vm1', '/confirm'),
      body: { allocations: [{ kind: 'gpus', committed: 1 }, { kind: 'ram', committed: 1 }] },
      status: 409,
      problem: 'confirm-exceeds-hold',
    },
    {
      name: 'confirm with an empty list → 400',
      method: 'POST',
      url: holdUrl('vm1', '/confirm'),
      body: { allocations: [] },
      status: 400,
      problem: 'invalid-request',
    },
    {
      // Found by the fuzz test: `null` was once taken for an absent body, confirming everything.
      name: 'confirm with a JSON null body → 400 (only an absent body means "all")',
      method: 'POST',
      url: holdUrl('vm1', '/confirm'),
      rawBody: 'null',
      headers: { 'content-type': 'application/json' },
      status: 400,
      problem: 'invalid-request',
    },
    {
      name: 'after the refusals the hold is unchanged and pending',
      method: 'GET',
      url: holdUrl('vm1'),
      status: 200,
      json: (body) => expect(body).toEqual(seen.vm1),
    },
    usage({ gpus: { committed: 5, held: 5, used: 10 } }),
    {
      name: 'confirm for less (gpus 2 of 4) → 200 confirmed, generation 2, ETag "2"',
      method: 'POST',
      url: holdUrl('vm1', '/confirm'),
      body: { allocations: [{ kind: 'gpus', committed: 2 }] },
      status: 200,
      json: (body, response) => {
        expect(response.headers.etag).toBe('"2"');
        expect(response.headers.location).toBeUndefined();
        expect(body).toEqual({
          ...seen.vm1,
          allocations: [{ kind: 'gpus', committed: 2, reserved: 0 }],
          generation: 2,
          status: 'confirmed',
          resolvedAt: at(0),
        });
      },
    },
    usage({ gpus: { committed: 7, reserved: 0, held: 1, used: 8, free: 2 } }, 'what was confirmed is committed; the rest (2) is freed'),
    {
      name: 'the confirmed hold is an allocation with the same id',
      method: 'GET',
      url: allocationUrl('vm1'),
      status: 200,
      json: (body, response) => {
        expect(response.headers.etag).toBe('"2"');
        expect(body).toEqual({
          id: ids.vm1,
          organization: 'acme',
          project: 'web',
          resource: { kind: 'vm', id: 'vm-1' },
          allocations: [{ kind: 'gpus', committed: 2, reserved: 0 }],
          generation: 2,
          createdBy: 'admin',
          updatedBy: 'admin',
          createdAt: at(0),
          updatedAt: at(0),
        });
      },
    },
    {
      name: 'GET allocations lists it beside vm-2',
      method: 'GET',
      url: web.allocations,
      status: 200,
      json: (body) => expect(body.items.map((a: any) => a.id)).toEqual([ids.vm1!, ids.vm2!].sort()),
    },
    {
      name: 'GET the hold → status confirmed',
      method: 'GET',
      url: holdUrl('vm1'),
      status: 200,
      json: (body) => expect(body).toMatchObject({ status: 'confirmed', generation: 2, resolvedAt: at(0) }),
    },
    pendingList('vm3'),
    ...resolved('vm1', 'confirmed'),
    usage({ gpus: { committed: 7, held: 1, used: 8 } }),
    {
      name: 'the confirmed hold is an ordinary allocation: PUT → 200, generation 3',
      method: 'PUT',
      url: allocationUrl('vm1'),
      body: allocation('vm-1', [{ kind: 'gpus', committed: 3 }]),
      status: 200,
      json: (body) => expect(body).toMatchObject({ id: ids.vm1, generation: 3 }),
    },
    usage({ gpus: { committed: 8, held: 1, used: 9 } }),
    // Confirm everything, and confirm a subset of the kinds.
    {
      name: 'POST hold vm-5 (cpu 2+1, ram 1Gi)',
      method: 'POST',
      url: web.holds,
      body: hold('vm-5', [{ kind: 'cpu', committed: 2, reserved: 1 }, { kind: 'ram', committed: '1Gi' }]),
      status: 201,
      json: remember('vm5'),
    },
    usage({ cpu: { committed: 0, reserved: 0, held: 3 }, ram: { committed: 0, held: Gi } }),
    {
      name: 'confirm with no body → all that is held',
      method: 'POST',
      url: holdUrl('vm5', '/confirm'),
      status: 200,
      json: (body) =>
        expect(body).toMatchObject({
          status: 'confirmed',
          allocations: [{ kind: 'cpu', committed: 2, reserved: 1 }, { kind: 'ram', committed: Gi, reserved: 0 }],
        }),
    },
    usage({ cpu: { committed: 2, reserved: 1, held: 0 }, ram: { committed: Gi, reserved: 0, held: 0 } }),
    {
      name: 'POST hold vm-6 (cpu 4, ram reserved 2Gi)',
      method: 'POST',
      url: web.holds,
      body: hold('vm-6', [{ kind: 'cpu', committed: 4 }, { kind: 'ram', reserved: '2Gi' }]),
      status: 201,
      json: remember('vm6'),
    },
    usage({ cpu: { committed: 2, reserved: 1, held: 4 }, ram: { committed: Gi, reserved: 0, held: 2 * Gi, used: 3 * Gi } }),
    {
      name: 'confirm only ram, for half: cpu and the other half are freed',
      method: 'POST',
      url: holdUrl('vm6', '/confirm'),
      body: { allocations: [{ kind: 'ram', committed: '1Gi' }] },
      status: 200,
      json: (body) => expect(body).toMatchObject({ status: 'confirmed', allocations: [{ kind: 'ram', committed: Gi, reserved: 0 }] }),
    },
    usage({ cpu: { committed: 2, reserved: 1, held: 0, used: 3 }, ram: { committed: 2 * Gi, reserved: 0, held: 0, used: 2 * Gi } }),
    {
      name: 'GET allocations/{vm-6} → only what was confirmed',
      method: 'GET',
      url: allocationUrl('vm6'),
      status: 200,
      json: (body) => expect(body.allocations).toEqual([{ kind: 'ram', committed: Gi, reserved: 0 }]),
    },
    {
      name: 'POST hold vm-6b (cpu 1)',
      method: 'POST',
      url: web.holds,
      body: hold('vm-6b', [{ kind: 'cpu', reserved: 1 }]),
      status: 201,
      json: remember('vm6b'),
    },
    {
      name: 'confirm with body {} → all that is held',
      method: 'POST',
      url: holdUrl('vm6b', '/confirm'),
      body: {},
      status: 200,
      json: (body) => expect(body).toMatchObject({ status: 'confirmed', allocations: [{ kind: 'cpu', committed: 0, reserved: 1 }] }),
    },
    usage({ cpu: { committed: 2, reserved: 2, held: 0, used: 4 } }),
  ];

  const release: Step[] = [
    {
      name: 'POST hold vm-7 (gpus 1) → 201',
      method: 'POST',
      url: web.holds,
      body: hold('vm-7', [{ kind: 'gpus', committed: 1 }]),
      status: 201,
      json: remember('vm7'),
    },
    usage({ gpus: { committed: 8, held: 2, used: 10, free: 0 } }),
    {
      name: 'release → 200 released, generation 2, ETag "2", lines as they were',
      method: 'POST',
      url: holdUrl('vm7', '/release'),
      status: 200,
      json: (body, response) => {
        expect(response.headers.etag).toBe('"2"');
        expect(body).toEqual({ ...seen.vm7, generation: 2, status: 'released', resolvedAt: at(0) });
      },
    },
    usage({ gpus: { committed: 8, held: 1, used: 9, free: 1 } }, 'release frees everything the hold held'),
    ...resolved('vm7', 'released'),
    {
      name: 'GET the released hold → status released',
      method: 'GET',
      url: holdUrl('vm7'),
      status: 200,
      json: (body) => expect(body).toMatchObject({ status: 'released', generation: 2 }),
    },
    notFound('a released hold is no allocation → 404', 'GET', allocationUrl('vm7')),
    pendingList('vm3'),
    {
      name: 'the released resource is free again → 201',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-7', [{ kind: 'cpu', committed: 1 }]),
      status: 201,
    },
    usage({ gpus: { committed: 8, held: 1, used: 9 } }),
  ];

  // Now: t = 0 s; gpus quota 10, committed 8, held 1 by vm-3 (expires at t = 60 s).
  const expiry: Step[] = [
    {
      name: 'POST hold vm-8 (gpus 1, ttl 30 s) → 201',
      method: 'POST',
      url: web.holds,
      body: hold('vm-8', [{ kind: 'gpus', committed: 1 }], 30),
      status: 201,
      json: (body) => {
        expect(body.expiresAt).toBe(at(30));
        remember('vm8')(body);
      },
    },
    usage({ gpus: { committed: 8, held: 2, used: 10, free: 0 } }),
    { name: 'the clock moves to 1 ms before the expiry', advanceMs: 29_999 },
    {
      name: 'GET vm-8 → still pending',
      method: 'GET',
      url: holdUrl('vm8'),
      status: 200,
      json: (body) => expect(body.status).toBe('pending'),
    },
    {
      name: 'a hold counts until its last millisecond: POST allocation gpus 1 → 409',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-9', [{ kind: 'gpus', committed: 1 }]),
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 1, used: 10, limit: 10 }]),
    },
    { name: 'the clock reaches the expiry (t = 30 s)', advanceMs: 1 },
    {
      name: 'GET vm-8 → expired, with no request having resolved it',
      method: 'GET',
      url: holdUrl('vm8'),
      status: 200,
      json: (body) => expect(body).toMatchObject({ id: ids.vm8, status: 'expired', expiresAt: at(30) }),
    },
    pendingList('vm3'),
    {
      name: 'a decision right after expiry, before any sweep, does not count it: gpus 1 → 201',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-9', [{ kind: 'gpus', committed: 1 }]),
      status: 201,
    },
    usage({ gpus: { committed: 9, reserved: 0, held: 1, used: 10 } }, 'the expired hold holds nothing'),
    ...resolved('vm8', 'expired'),
    {
      name: 'GET vm-8 → expired, resolved at its expiry',
      method: 'GET',
      url: holdUrl('vm8'),
      status: 200,
      json: (body) => expect(body).toMatchObject({ status: 'expired', resolvedAt: at(30) }),
    },
    notFound('an expired hold is no allocation → 404', 'GET', allocationUrl('vm8')),
    {
      name: 'the expired hold’s resource is free again → 201',
      method: 'POST',
      url: web.holds,
      body: hold('vm-8', [{ kind: 'cpu', committed: 1 }]),
      status: 201,
      json: remember('vm8b'),
    },
    { name: 'release the new vm-8 hold', method: 'POST', url: holdUrl('vm8b', '/release'), status: 200 },
    // vm-3 (gpus 1) expires at t = 60 s; gpus: committed 9 + held 1 = quota 10.
    { name: 'the clock reaches vm-3’s expiry (t = 60 s)', advanceMs: 30_000 },
    {
      name: 'a refused decision right after expiry does not count it either: used is 9, not 10',
      method: 'POST',
      url: web.allocations,
      body: allocation('vm-10', [{ kind: 'gpus', committed: 2 }]),
      status: 409,
      problem: 'quota-exceeded',
      json: (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 2, used: 9, limit: 10 }]),
    },
    {
      name: 'a quota cut to 9 passes without force: the expired hold is not usage',
      method: 'PUT',
      url: web.quotas,
      body: { quotas: [{ kind: 'gpus', quantity: 9 }] },
      status: 200,
    },
    usage({ gpus: { quantity: 9, committed: 9, held: 0, used: 9, overLimit: false } }),
    ...resolved('vm3', 'expired'),
    pendingList(),
    // An expired hold whose first request afterwards is a confirm.
    {
      name: 'POST hold vm-11 (cpu 5, ttl 5 s) → 201',
      method: 'POST',
      url: web.holds,
      body: hold('vm-11', [{ kind: 'cpu', committed: 5 }], 5),
      status: 201,
      json: remember('vm11'),
    },
    usage({ cpu: { held: 5 } }),
    { name: 'the clock passes vm-11’s expiry', advanceMs: 5_001 },
    {
      name: 'confirm as the first request after expiry → 409 hold-already-resolved (expired)',
      method: 'POST',
      url: holdUrl('vm11', '/confirm'),
      status: 409,
      problem: 'hold-already-resolved',
      json: (body) => expect(body.resolution).toBe('expired'),
    },
    usage({ cpu: { committed: 3, reserved: 2, held: 0 } }, 'the expiry the confirm found is kept: nothing held'),
    ...resolved('vm11', 'expired'),
  ];

  const list: Step[] = [
    ...['p-1', 'p-2', 'p-3'].map((id): ApiCase => ({
      name: `POST hold ${id}`,
      method: 'POST',
      url: web.holds,
      body: hold(id, [{ kind: 'cpu', committed: 1 }], 3600),
      status: 201,
      json: remember(id),
    })),
    pendingList('p-1', 'p-2', 'p-3'),
    {
      name: 'holds are per project: the other project lists none',
      method: 'GET',
      url: api2.holds,
      status: 200,
      json: (body) => expect(body).toEqual({ items: [], nextCursor: null }),
    },
  ];

  for (const step of [...setup, ...ttl, ...create, ...routes, ...confirm, ...release, ...expiry, ...list]) {
    if ('advanceMs' in step) {
      it(step.name, () => api.clock.advance(step.advanceMs));
    } else {
      it(step.name, async () => {
        await runCase(api.app, step);
      });
    }
  }

  it('limit=1 walks the pending holds one by one, in id order', async () => {
    const all = await getJson(api.app, web.holds);
    const walk = await walkPages(api.app, web.holds, 1);
    expect(walk.items).toEqual(all.items);
    expect(walk.pages).toEqual([1, 1, 1]);
  });

  it('10 concurrent POST holds for one resource: one 201, the rest 409 duplicate-allocation naming it', async () => {
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => call(api.app, 'POST', web.holds, hold('race-1', [{ kind: 'cpu', committed: 1 }]))),
    );
    const created = responses.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    for (const response of responses.filter((r) => r.status !== 201)) {
      expectProblem(response, 'duplicate-allocation');
      expect(response.json.existingAllocationId).toBe(created[0]!.json.id);
    }
    ids.race1 = created[0]!.json.id;
  });

  it('20 concurrent confirms and releases of one hold: exactly one resolves it', async () => {
    const url = `${web.holds}/${ids.race1}`;
    const journalBefore = await lastRevisionOf(api.app, 'acme');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) => call(api.app, 'POST', `${url}/${index % 2 === 0 ? 'confirm' : 'release'}`)),
    );
    const winners = responses.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    const resolution = winners[0]!.json.status;
    expect(['confirmed', 'released']).toContain(resolution);
    for (const response of responses.filter((r) => r.status !== 200)) {
      expectProblem(response, 'hold-already-resolved');
      expect(response.json.resolution).toBe(resolution);
    }
    expect((await getJson(api.app, url)).status).toBe(resolution);
    const entries = (await journalOf(api.app, 'acme')).filter((e) => e.revision > journalBefore);
    expect(entries.map((e) => [e.action, e.subject])).toEqual([[`hold.${resolution}`, ids.race1]]);
  });

  it('confirms and releases racing an expiry: all 409 expired, one hold.expired entry', async () => {
    const created = await call(api.app, 'POST', web.holds, hold('race-2', [{ kind: 'cpu', committed: 1 }], 1));
    expect(created.status).toBe(201);
    api.clock.advance(1_000);
    const journalBefore = await lastRevisionOf(api.app, 'acme');
    const url = `${web.holds}/${created.json.id}`;
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, index) => call(api.app, 'POST', `${url}/${index % 2 === 0 ? 'confirm' : 'release'}`)),
    );
    for (const response of responses) {
      expectProblem(response, 'hold-already-resolved');
      expect(response.json.resolution).toBe('expired');
    }
    const entries = (await journalOf(api.app, 'acme')).filter((e) => e.revision > journalBefore);
    expect(entries.map((e) => [e.action, e.subject])).toEqual([['hold.expired', created.json.id]]);
  });

  it('the counters equal the live allocations and pending holds', async () => {
    await assertLedgerInvariants(api.test.ledger, ['acme']);
  });
});
