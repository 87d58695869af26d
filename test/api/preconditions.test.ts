// Goal: optimistic concurrency over HTTP. Allocations, quota sets and holds carry a
// `generation` and answer with `ETag: "<generation>"`; PUT/DELETE of an allocation, PUT quotas,
// and hold confirm/release honour If-Match: the current tag succeeds, a stale one is 412
// precondition-failed with `currentGeneration` and changes nothing, `*` matches any version,
// a malformed tag is 400. A 409 denial and a 412 are never confused: with a current tag a
// denial stays 409 (and names no generation), with a stale tag the answer is 412 (and names no
// violation). DELETE of an already-deleted allocation is 204 whatever the If-Match.
// Method: per engine, a fresh ledger and app; one ordered table of `ApiCase`s through
// `app.inject`, tags taken from earlier answers; around every refused case a snapshot of all
// the API shows (quotas, live allocations, pending holds, the journal) must be unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocation, hold } from '../support/bodies.js';
import { engines } from '../support/engines.js';
import { closeApi, expectFieldError, getJson, runCase, type ApiCase } from './harness.js';
import { fullSnapshot, openClockedApi, setupCases, unknownId, urls, usageCase, type ClockedApi } from './harness-extra.js';

const web = urls('acme', 'web');
const ifMatch = (tag: string) => ({ 'if-match': tag });
// Not a tag this server sends: "03" is not "3" (a tag is compared as sent, not as a number).
const malformedTags = ['3', 'abc', '"3', '"x"', '"-1"', '"03"'];

/** A case that must be refused without changing anything. */
type Case = ApiCase & { refused?: boolean };

/** 412 precondition-failed naming the current generation, and nothing of a denial. */
const stale = (currentGeneration: () => number) => ({
  status: 412,
  problem: 'precondition-failed' as const,
  refused: true,
  json: (body: any) => {
    expect(body.currentGeneration).toBe(currentGeneration());
    expect(body.violations).toBeUndefined();
    expect(body.belowUsage).toBeUndefined();
    expect(body.existingAllocationId).toBeUndefined();
    expect(body.resolution).toBeUndefined();
  },
});

/** A 409 denial that says nothing about generations. */
const denial = (problem: ApiCase['problem'], check?: (body: any) => void) => ({
  status: 409,
  problem,
  refused: true,
  json: (body: any) => {
    expect(body.currentGeneration).toBeUndefined();
    check?.(body);
  },
});

/** The response's ETag is its body's generation, and is `tag`. */
const tagged = (tag: string) => (body: any, response: any) => {
  expect(response.headers.etag).toBe(tag);
  expect(response.headers.etag).toBe(`"${body.generation}"`);
};

describe.each(engines)('If-Match and ETag on %s', (engine) => {
  let api: ClockedApi;
  const ids: Record<string, string> = {};
  const allocationUrl = (name: string) => () => `${web.allocations}/${ids[name]}`;
  const holdUrl = (name: string, suffix = '') => () => `${web.holds}/${ids[name]}${suffix}`;
  const remember = (name: string, tag: string) => (body: any, response: any) => {
    tagged(tag)(body, response);
    ids[name] = body.id;
  };

  beforeAll(async () => {
    api = await openClockedApi(engine);
  });
  afterAll(() => closeApi(api));

  const setup = setupCases({
    kinds: { gpus: { displayName: 'GPUs' }, cpu: { displayName: 'CPU' } },
    organizations: { acme: ['web'] },
    quotas: { acme: [{ kind: 'gpus', quantity: 10 }] },
  });

  const allocations: Case[] = [
    { name: 'POST a1 → 201, ETag "1"', method: 'POST', url: web.allocations, body: allocation('a-1', [{ kind: 'gpus', committed: 2 }]), status: 201, json: remember('a1', '"1"') },
    { name: 'GET a1 → ETag "1"', method: 'GET', url: allocationUrl('a1'), status: 200, json: tagged('"1"') },
    {
      name: 'PUT a1 with the current tag "1" → 200, ETag "2"',
      method: 'PUT',
      url: allocationUrl('a1'),
      headers: ifMatch('"1"'),
      body: allocation('a-1', [{ kind: 'gpus', committed: 3 }]),
      status: 200,
      json: tagged('"2"'),
    },
    { name: 'PUT a1 with the stale tag "1" → 412, currentGeneration 2', method: 'PUT', url: allocationUrl('a1'), headers: ifMatch('"1"'), body: allocation('a-1', [{ kind: 'gpus', committed: 4 }]), ...stale(() => 2) },
    { name: 'PUT a1 with a tag from the future "99" → 412', method: 'PUT', url: allocationUrl('a1'), headers: ifMatch('"99"'), body: allocation('a-1', [{ kind: 'gpus', committed: 4 }]), ...stale(() => 2) },
    { name: 'DELETE a1 with the stale tag "1" → 412, currentGeneration 2', method: 'DELETE', url: allocationUrl('a1'), headers: ifMatch('"1"'), ...stale(() => 2) },
    { name: 'GET a1 → still generation 2, gpus 3', method: 'GET', url: allocationUrl('a1'), status: 200, json: (body, response) => {
      tagged('"2"')(body, response);
      expect(body.allocations).toEqual([{ kind: 'gpus', committed: 3, reserved: 0 }]);
    } },
    {
      name: 'PUT a1 with If-Match * → 200, ETag "3"',
      method: 'PUT',
      url: allocationUrl('a1'),
      headers: ifMatch('*'),
      body: allocation('a-1', [{ kind: 'gpus', committed: 4 }]),
      status: 200,
      json: tagged('"3"'),
    },
    ...malformedTags.flatMap((tag): Case[] => [
      { name: `PUT a1 with the malformed If-Match ${tag} → 400`, method: 'PUT', url: allocationUrl('a1'), headers: ifMatch(tag), body: allocation('a-1', [{ kind: 'gpus', committed: 1 }]), status: 400, problem: 'invalid-request', refused: true, json: (body) => expectFieldError(body, 'If-Match') },
      { name: `DELETE a1 with the malformed If-Match ${tag} → 400`, method: 'DELETE', url: allocationUrl('a1'), headers: ifMatch(tag), status: 400, problem: 'invalid-request', refused: true, json: (body) => expectFieldError(body, 'If-Match') },
    ]),
    // Denial vs precondition
    {
      name: 'PUT a1 over quota with the current tag → 409 quota-exceeded, not 412',
      method: 'PUT',
      url: allocationUrl('a1'),
      headers: ifMatch('"3"'),
      body: allocation('a-1', [{ kind: 'gpus', committed: 11 }]),
      ...denial('quota-exceeded', (body) => expect(body.violations).toEqual([{ kind: 'gpus', scope: 'organization', requested: 7, used: 4, limit: 10 }])),
    },
    { name: 'PUT a1 over quota with a stale tag → 412, not 409', method: 'PUT', url: allocationUrl('a1'), headers: ifMatch('"2"'), body: allocation('a-1', [{ kind: 'gpus', committed: 11 }]), ...stale(() => 3) },
    { name: 'POST a2 (cpu 1) → 201', method: 'POST', url: web.allocations, body: allocation('a-2', [{ kind: 'cpu', committed: 1 }]), status: 201, json: remember('a2', '"1"') },
    {
      name: 'PUT a1 onto a2’s resource with the current tag → 409 duplicate-allocation',
      method: 'PUT',
      url: allocationUrl('a1'),
      headers: ifMatch('"3"'),
      body: allocation('a-2', [{ kind: 'gpus', committed: 1 }]),
      ...denial('duplicate-allocation', (body) => expect(body.existingAllocationId).toBe(ids.a2)),
    },
    { name: 'PUT a1 onto a2’s resource with a stale tag → 412', method: 'PUT', url: allocationUrl('a1'), headers: ifMatch('"1"'), body: allocation('a-2', [{ kind: 'gpus', committed: 1 }]), ...stale(() => 3) },
    usageCase('acme', { gpus: { committed: 4, reserved: 0, held: 0 }, cpu: { committed: 1 } }),
    // Delete
    { name: 'DELETE a1 with the current tag "3" → 204', method: 'DELETE', url: allocationUrl('a1'), headers: ifMatch('"3"'), status: 204 },
    ...['"3"', '"1"', '"999"', '*'].map((tag): Case => ({
      name: `DELETE the deleted a1 with If-Match ${tag} → 204`,
      method: 'DELETE',
      url: allocationUrl('a1'),
      headers: ifMatch(tag),
      status: 204,
      refused: true, // nothing left to change: the snapshot must not move either
    })),
    { name: 'DELETE the deleted a1 without If-Match → 204', method: 'DELETE', url: allocationUrl('a1'), status: 204, refused: true },
    { name: 'GET a1 → 404', method: 'GET', url: allocationUrl('a1'), status: 404, problem: 'not-found' },
    { name: 'PUT the deleted a1 with If-Match * → 404', method: 'PUT', url: allocationUrl('a1'), headers: ifMatch('*'), body: allocation('a-1', [{ kind: 'gpus', committed: 1 }]), status: 404, problem: 'not-found', refused: true },
    { name: 'DELETE an unknown id with If-Match "1" → 404', method: 'DELETE', url: `${web.allocations}/${unknownId}`, headers: ifMatch('"1"'), status: 404, problem: 'not-found', refused: true },
    usageCase('acme', { gpus: { committed: 0, reserved: 0, held: 0 }, cpu: { committed: 1 } }),
  ];

  // Setup's one PUT quotas left the quota set at generation 1; each accepted PUT adds one.
  const quotas: Case[] = [
    { name: 'GET quotas → ETag "1", the quota set’s generation', method: 'GET', url: web.quotas, status: 200, json: tagged('"1"') },
    {
      name: 'PUT quotas with the current tag "1" → 200, ETag "2"',
      method: 'PUT',
      url: web.quotas,
      headers: ifMatch('"1"'),
      body: { quotas: [{ kind: 'gpus', quantity: 12 }] },
      status: 200,
      json: (body, response) => {
        tagged('"2"')(body, response);
        expect(body.quotas.find((q: any) => q.kind === 'gpus').quantity).toBe(12);
      },
    },
    { name: 'PUT quotas with the stale tag "1" → 412, currentGeneration 2', method: 'PUT', url: web.quotas, headers: ifMatch('"1"'), body: { quotas: [{ kind: 'gpus', quantity: 20 }] }, ...stale(() => 2) },
    { name: 'PUT quotas with If-Match * → 200, ETag "3"', method: 'PUT', url: web.quotas, headers: ifMatch('*'), body: { quotas: [{ kind: 'gpus', quantity: 10 }] }, status: 200, json: tagged('"3"') },
    ...malformedTags.map((tag): Case => ({
      name: `PUT quotas with the malformed If-Match ${tag} → 400`,
      method: 'PUT',
      url: web.quotas,
      headers: ifMatch(tag),
      body: { quotas: [{ kind: 'gpus', quantity: 1 }] },
      status: 400,
      problem: 'invalid-request',
      refused: true,
      json: (body) => expectFieldError(body, 'If-Match'),
    })),
    { name: 'POST a3 (gpus 5) → 201', method: 'POST', url: web.allocations, body: allocation('a-3', [{ kind: 'gpus', committed: 5 }]), status: 201 },
    {
      name: 'PUT quotas below usage with the current tag "3" → 409 quota-below-usage, not 412',
      method: 'PUT',
      url: web.quotas,
      headers: ifMatch('"3"'),
      body: { quotas: [{ kind: 'gpus', quantity: 4 }] },
      ...denial('quota-below-usage', (body) => expect(body.belowUsage).toEqual([{ kind: 'gpus', quantity: 4, used: 5 }])),
    },
    { name: 'PUT quotas below usage with the stale tag "2" → 412, not 409', method: 'PUT', url: web.quotas, headers: ifMatch('"2"'), body: { quotas: [{ kind: 'gpus', quantity: 4 }] }, ...stale(() => 3) },
    { name: 'PUT quotas below usage with force and the current tag "3" → 200, ETag "4"', method: 'PUT', url: `${web.quotas}?force=true`, headers: ifMatch('"3"'), body: { quotas: [{ kind: 'gpus', quantity: 4 }] }, status: 200, json: tagged('"4"') },
    usageCase('acme', { gpus: { quantity: 4, committed: 5, overLimit: true } }),
  ];

  const holds: Case[] = [
    { name: 'POST hold h1 → 201, ETag "1"', method: 'POST', url: web.holds, body: hold('h-1', [{ kind: 'cpu', committed: 2 }]), status: 201, json: remember('h1', '"1"') },
    { name: 'GET h1 → ETag "1"', method: 'GET', url: holdUrl('h1'), status: 200, json: tagged('"1"') },
    { name: 'confirm h1 with a stale tag "2" → 412, currentGeneration 1', method: 'POST', url: holdUrl('h1', '/confirm'), headers: ifMatch('"2"'), ...stale(() => 1) },
    { name: 'release h1 with a stale tag "0" → 412, currentGeneration 1', method: 'POST', url: holdUrl('h1', '/release'), headers: ifMatch('"0"'), ...stale(() => 1) },
    {
      name: 'confirm h1 for more than held with the current tag → 409 confirm-exceeds-hold, not 412',
      method: 'POST',
      url: holdUrl('h1', '/confirm'),
      headers: ifMatch('"1"'),
      body: { allocations: [{ kind: 'cpu', committed: 3 }] },
      ...denial('confirm-exceeds-hold'),
    },
    { name: 'confirm h1 for more than held with a stale tag → 412, not 409', method: 'POST', url: holdUrl('h1', '/confirm'), headers: ifMatch('"7"'), body: { allocations: [{ kind: 'cpu', committed: 3 }] }, ...stale(() => 1) },
    ...malformedTags.flatMap((tag): Case[] => [
      { name: `confirm h1 with the malformed If-Match ${tag} → 400`, method: 'POST', url: holdUrl('h1', '/confirm'), headers: ifMatch(tag), status: 400, problem: 'invalid-request', refused: true, json: (body) => expectFieldError(body, 'If-Match') },
      { name: `release h1 with the malformed If-Match ${tag} → 400`, method: 'POST', url: holdUrl('h1', '/release'), headers: ifMatch(tag), status: 400, problem: 'invalid-request', refused: true, json: (body) => expectFieldError(body, 'If-Match') },
    ]),
    { name: 'GET h1 → still pending, generation 1', method: 'GET', url: holdUrl('h1'), status: 200, json: (body, response) => {
      tagged('"1"')(body, response);
      expect(body.status).toBe('pending');
    } },
    usageCase('acme', { cpu: { committed: 1, held: 2 } }),
    { name: 'confirm h1 with the current tag "1" → 200, ETag "2"', method: 'POST', url: holdUrl('h1', '/confirm'), headers: ifMatch('"1"'), status: 200, json: tagged('"2"') },
    { name: 'the allocation h1 became has ETag "2"', method: 'GET', url: () => `${web.allocations}/${ids.h1}`, status: 200, json: tagged('"2"') },
    {
      name: 'PUT the allocation h1 with the stale tag "1" → 412, currentGeneration 2',
      method: 'PUT',
      url: () => `${web.allocations}/${ids.h1}`,
      headers: ifMatch('"1"'),
      body: allocation('h-1', [{ kind: 'cpu', committed: 1 }]),
      ...stale(() => 2),
    },
    {
      name: 'PUT the allocation h1 with the current tag "2" → 200, ETag "3"',
      method: 'PUT',
      url: () => `${web.allocations}/${ids.h1}`,
      headers: ifMatch('"2"'),
      body: allocation('h-1', [{ kind: 'cpu', committed: 1 }]),
      status: 200,
      json: tagged('"3"'),
    },
    { name: 'GET h1 on the holds route → confirmed, ETag "3"', method: 'GET', url: holdUrl('h1'), status: 200, json: (body, response) => {
      tagged('"3"')(body, response);
      expect(body.status).toBe('confirmed');
    } },
    {
      name: 'confirm the confirmed h1 with If-Match * → 409 hold-already-resolved, not 412',
      method: 'POST',
      url: holdUrl('h1', '/confirm'),
      headers: ifMatch('*'),
      ...denial('hold-already-resolved', (body) => expect(body.resolution).toBe('confirmed')),
    },
    {
      name: 'release the confirmed h1 with its current tag → 409 hold-already-resolved',
      method: 'POST',
      url: holdUrl('h1', '/release'),
      headers: ifMatch('"3"'),
      ...denial('hold-already-resolved', (body) => expect(body.resolution).toBe('confirmed')),
    },
    { name: 'POST hold h2 → 201', method: 'POST', url: web.holds, body: hold('h-2', [{ kind: 'cpu', committed: 1 }]), status: 201, json: remember('h2', '"1"') },
    { name: 'release h2 with If-Match * → 200, ETag "2"', method: 'POST', url: holdUrl('h2', '/release'), headers: ifMatch('*'), status: 200, json: (body, response) => {
      tagged('"2"')(body, response);
      expect(body.status).toBe('released');
    } },
    { name: 'POST hold h3 → 201', method: 'POST', url: web.holds, body: hold('h-3', [{ kind: 'cpu', committed: 1 }]), status: 201, json: remember('h3', '"1"') },
    { name: 'release h3 with the current tag "1" → 200, ETag "2"', method: 'POST', url: holdUrl('h3', '/release'), headers: ifMatch('"1"'), status: 200, json: tagged('"2"') },
    {
      name: 'release the released h3 with its current tag → 409 hold-already-resolved',
      method: 'POST',
      url: holdUrl('h3', '/release'),
      headers: ifMatch('"2"'),
      ...denial('hold-already-resolved', (body) => expect(body.resolution).toBe('released')),
    },
    usageCase('acme', { cpu: { committed: 2, held: 0 } }),
  ];

  for (const apiCase of [...setup, ...allocations, ...quotas, ...holds] as Case[]) {
    it(apiCase.name, async () => {
      if (!apiCase.refused) {
        await runCase(api.app, apiCase);
        return;
      }
      const before = await fullSnapshot(api.app);
      await runCase(api.app, apiCase);
      expect(await fullSnapshot(api.app)).toEqual(before);
    });
  }

  it('every quota row reports its own generation, and the set’s ETag follows each PUT', async () => {
    const body = await getJson(api.app, web.quotas);
    expect(body.generation).toBe(4);
    const gpus = body.quotas.find((q: any) => q.kind === 'gpus');
    const cpu = body.quotas.find((q: any) => q.kind === 'cpu');
    expect(gpus.generation).toBeGreaterThan(cpu.generation);
  });
});
