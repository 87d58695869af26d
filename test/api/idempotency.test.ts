// Goal: Idempotency-Key works on every mutating route (POST allocations, PUT and DELETE of an
// allocation, PUT quotas, POST holds, confirm, release): a retry with the same key and the same
// request gets the first response again — status, body, ETag/Location — with
// `idempotent-replayed: true`, denials included (a first 409 quota-exceeded stays 409 even
// after the quota was raised), and does nothing a second time (no second allocation, counters
// and journal move once); the same key with a different request is 422 idempotency-key-reused;
// 100 concurrent requests with one key and body all get the same answer (or 409
// request-in-progress, but at least one 201) and exactly one allocation exists. Keys are scoped
// to the principal; only one principal ('admin') exists today, so that scope is not exercised.
// Method: per engine, a fresh ledger on a ManualClock (so a waiting retry never times out by
// the clock) and the app; requests through `app.inject`, first and retried answers compared
// byte for byte; the journal's last revision, the allocation list and GET quotas show what a
// replay did (nothing).
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKeyLengthMax } from '../../src/domain/constants.js';
import { allocation, hold } from '../support/bodies.js';
import { assertLedgerInvariants, engines } from '../support/engines.js';
import { closeApi, expectFieldError, expectProblem, getJson, quotasOf, runCase, type ApiResponse } from './harness.js';
import {
  call,
  fullSnapshot,
  journalOf,
  lastRevisionOf,
  openClockedApi,
  setupCases,
  urls,
  type ClockedApi,
} from './harness-extra.js';

const web = urls('acme', 'web');
const key = (value: string, more: Record<string, string> = {}) => ({ 'idempotency-key': value, ...more });

/** `again` is `first` replayed: same status, body and entity headers, marked as a replay. */
function expectReplay(first: ApiResponse, again: ApiResponse): void {
  expect(first.headers['idempotent-replayed']).toBeUndefined();
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.status).toBe(first.status);
  expect(again.text).toBe(first.text);
  for (const header of ['etag', 'location', 'content-type']) {
    expect(again.headers[header], header).toEqual(first.headers[header]);
  }
}

/** Sends the same request twice; the second must replay the first and leave everything as the first left it. */
async function sendTwice(
  app: FastifyInstance,
  request: () => Promise<ApiResponse>,
  expected: { status: number; entries: number },
): Promise<ApiResponse> {
  const revision = await lastRevisionOf(app, 'acme');
  const first = await request();
  expect(first.status, first.text.slice(0, 300)).toBe(expected.status);
  const after = await fullSnapshot(app);
  expect(await lastRevisionOf(app, 'acme')).toBe(revision + expected.entries);
  const again = await request();
  expectReplay(first, again);
  expect(await fullSnapshot(app)).toEqual(after);
  return first;
}

describe.each(engines)('Idempotency-Key on %s', (engine) => {
  let api: ClockedApi;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    api = await openClockedApi(engine);
    const setup = setupCases({
      kinds: { gpus: { displayName: 'GPUs' }, cpu: { displayName: 'CPU' } },
      organizations: { acme: ['web'] },
      quotas: { acme: [{ kind: 'gpus', quantity: 10 }] },
    });
    for (const apiCase of setup) await runCase(api.app, apiCase);
  });
  afterAll(() => closeApi(api));

  describe('a retry replays the first response and changes nothing', () => {
    it('POST allocations: one allocation, counted once', async () => {
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'POST', web.allocations, allocation('vm-1', [{ kind: 'gpus', committed: 2 }]), key('post-1')),
        { status: 201, entries: 1 },
      );
      ids.vm1 = first.json.id;
      expect(first.headers.location).toBe(`${web.allocations}/${ids.vm1}`);
      const list = await getJson(api.app, `${web.allocations}?resourceId=vm-1`);
      expect(list.items.map((a: any) => a.id)).toEqual([ids.vm1]);
      expect((await quotasOf(api.app, 'acme')).gpus).toMatchObject({ committed: 2, used: 2 });
    });

    it('PUT allocation: applied once, even though the retry’s If-Match is now stale', async () => {
      const first = await sendTwice(
        api.app,
        () =>
          call(api.app, 'PUT', `${web.allocations}/${ids.vm1}`, allocation('vm-1', [{ kind: 'gpus', committed: 3 }]), key('put-1', { 'if-match': '"1"' })),
        { status: 200, entries: 1 },
      );
      expect(first.json.generation).toBe(2);
      expect(first.headers.etag).toBe('"2"');
      expect((await getJson(api.app, `${web.allocations}/${ids.vm1}`)).generation).toBe(2);
      expect((await quotasOf(api.app, 'acme')).gpus).toMatchObject({ committed: 3 });
    });

    it('PUT quotas: the quota set’s generation moves once', async () => {
      const before = (await getJson(api.app, web.quotas)).generation;
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'PUT', web.quotas, { quotas: [{ kind: 'gpus', quantity: 12 }] }, key('quotas-1')),
        { status: 200, entries: 1 },
      );
      expect(first.json.generation).toBe(before + 1);
      expect((await getJson(api.app, web.quotas)).generation).toBe(before + 1);
    });

    it('POST holds: one hold, held once', async () => {
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'POST', web.holds, hold('vm-h1', [{ kind: 'gpus', committed: 4 }]), key('hold-1')),
        { status: 201, entries: 1 },
      );
      ids.h1 = first.json.id;
      expect((await getJson(api.app, web.holds)).items.map((h: any) => h.id)).toEqual([ids.h1]);
      expect((await quotasOf(api.app, 'acme')).gpus).toMatchObject({ committed: 3, held: 4, used: 7 });
    });

    it('confirm: the retry is the first 200, not 409 hold-already-resolved', async () => {
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'POST', `${web.holds}/${ids.h1}/confirm`, { allocations: [{ kind: 'gpus', committed: 3 }] }, key('confirm-1')),
        { status: 200, entries: 1 },
      );
      expect(first.json.status).toBe('confirmed');
      expect((await quotasOf(api.app, 'acme')).gpus).toMatchObject({ committed: 6, held: 0, used: 6 });
      // Without the key, the same request is a new one: the hold is resolved.
      const fresh = await call(api.app, 'POST', `${web.holds}/${ids.h1}/confirm`, { allocations: [{ kind: 'gpus', committed: 3 }] });
      expectProblem(fresh, 'hold-already-resolved');
      expect(fresh.json.resolution).toBe('confirmed');
    });

    it('confirm with no body: a retry with no body replays it', async () => {
      const created = await call(api.app, 'POST', web.holds, hold('vm-h2', [{ kind: 'cpu', committed: 1 }]));
      expect(created.status).toBe(201);
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'POST', `${web.holds}/${created.json.id}/confirm`, undefined, key('confirm-2')),
        { status: 200, entries: 1 },
      );
      expect(first.json).toMatchObject({ status: 'confirmed', allocations: [{ kind: 'cpu', committed: 1, reserved: 0 }] });
    });

    it('release: the retry is the first 200', async () => {
      const created = await call(api.app, 'POST', web.holds, hold('vm-h3', [{ kind: 'gpus', committed: 1 }]));
      expect(created.status).toBe(201);
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'POST', `${web.holds}/${created.json.id}/release`, undefined, key('release-1')),
        { status: 200, entries: 1 },
      );
      expect(first.json.status).toBe('released');
      expect((await quotasOf(api.app, 'acme')).gpus).toMatchObject({ committed: 6, held: 0 });
    });

    it('DELETE allocation: 204 replayed, deleted once', async () => {
      const created = await call(api.app, 'POST', web.allocations, allocation('vm-d', [{ kind: 'gpus', committed: 1 }]));
      expect(created.status).toBe(201);
      const first = await sendTwice(
        api.app,
        () => call(api.app, 'DELETE', `${web.allocations}/${created.json.id}`, undefined, key('delete-1', { 'if-match': '"1"' })),
        { status: 204, entries: 1 },
      );
      expect(first.text).toBe('');
      const entries = await journalOf(api.app, 'acme');
      expect(entries.filter((e) => e.action === 'allocation.deleted' && e.subject === created.json.id)).toHaveLength(1);
    });
  });

  describe('denials are replayed too', () => {
    it('a first 409 quota-exceeded is replayed as 409 even after the quota was raised', async () => {
      const body = allocation('vm-big', [{ kind: 'gpus', committed: 20 }]);
      const first = await sendTwice(api.app, () => call(api.app, 'POST', web.allocations, body, key('big-1')), { status: 409, entries: 0 });
      expectProblem(first, 'quota-exceeded');
      const raised = await call(api.app, 'PUT', web.quotas, { quotas: [{ kind: 'gpus', quantity: 100 }] });
      expect(raised.status).toBe(200);
      const revision = await lastRevisionOf(api.app, 'acme');
      const again = await call(api.app, 'POST', web.allocations, body, key('big-1'));
      expectReplay(first, again);
      expect(await lastRevisionOf(api.app, 'acme')).toBe(revision);
      expect((await getJson(api.app, `${web.allocations}?resourceId=vm-big`)).items).toEqual([]);
      // A new key is a new request, decided now.
      const fresh = await call(api.app, 'POST', web.allocations, body, key('big-2'));
      expect(fresh.status).toBe(201);
    });

    it('a first 404 (unknown project) is replayed after the project exists', async () => {
      const url = urls('acme', 'later').allocations;
      const body = allocation('vm-later', [{ kind: 'cpu', committed: 1 }]);
      const first = await call(api.app, 'POST', url, body, key('later-1'));
      expectProblem(first, 'not-found');
      expect((await call(api.app, 'PUT', '/v1/organizations/acme/projects/later', {})).status).toBe(201);
      expectReplay(first, await call(api.app, 'POST', url, body, key('later-1')));
      expect((await getJson(api.app, url)).items).toEqual([]);
    });

    it('a first 412 is replayed, and so is a first 409 confirm-exceeds-hold', async () => {
      const stale = () =>
        call(api.app, 'PUT', `${web.allocations}/${ids.vm1}`, allocation('vm-1', [{ kind: 'gpus', committed: 1 }]), key('stale-1', { 'if-match': '"1"' }));
      const first = await sendTwice(api.app, stale, { status: 412, entries: 0 });
      expectProblem(first, 'precondition-failed');

      const created = await call(api.app, 'POST', web.holds, hold('vm-h4', [{ kind: 'cpu', committed: 1 }]));
      const exceeding = () =>
        call(api.app, 'POST', `${web.holds}/${created.json.id}/confirm`, { allocations: [{ kind: 'cpu', committed: 2 }] }, key('exceed-1'));
      expectProblem(await sendTwice(api.app, exceeding, { status: 409, entries: 0 }), 'confirm-exceeds-hold');
    });
  });

  describe('a key names one request', () => {
    const reuses: { name: string; send: () => Promise<ApiResponse> }[] = [
      { name: 'a different body on the same route', send: () => call(api.app, 'POST', web.allocations, allocation('vm-1', [{ kind: 'gpus', committed: 1 }]), key('post-1')) },
      { name: 'a different resource in the body', send: () => call(api.app, 'POST', web.allocations, allocation('vm-other', [{ kind: 'gpus', committed: 2 }]), key('post-1')) },
      { name: 'another route', send: () => call(api.app, 'PUT', web.quotas, { quotas: [{ kind: 'gpus', quantity: 12 }] }, key('post-1')) },
      { name: 'another path (query)', send: () => call(api.app, 'PUT', `${web.quotas}?force=true`, { quotas: [{ kind: 'gpus', quantity: 12 }] }, key('quotas-1')) },
      { name: 'a confirm body where the first had none', send: () => call(api.app, 'POST', `${web.holds}/${ids.h1}/confirm`, { allocations: [{ kind: 'gpus', committed: 1 }] }, key('confirm-1')) },
    ];
    for (const reuse of reuses) {
      it(`the same key with ${reuse.name} → 422 idempotency-key-reused, nothing changes`, async () => {
        const before = await fullSnapshot(api.app);
        const response = await reuse.send();
        expectProblem(response, 'idempotency-key-reused');
        expect(response.headers['idempotent-replayed']).toBeUndefined();
        expect(await fullSnapshot(api.app)).toEqual(before);
      });
    }

    it('malformed keys → 400 naming Idempotency-Key, nothing changes', async () => {
      const before = await fullSnapshot(api.app);
      for (const bad of ['has space', 'x'.repeat(idempotencyKeyLengthMax + 1), 'tab\there']) {
        const response = await call(api.app, 'POST', web.allocations, allocation('vm-bad', [{ kind: 'cpu', committed: 1 }]), key(bad));
        expectProblem(response, 'invalid-request');
        expectFieldError(response.json, 'Idempotency-Key');
      }
      expect(await fullSnapshot(api.app)).toEqual(before);
    });

    it(`a key of ${idempotencyKeyLengthMax} visible characters is accepted and replayed`, async () => {
      const long = `${'k'.repeat(idempotencyKeyLengthMax - 2)}~!`;
      await sendTwice(
        api.app,
        () => call(api.app, 'POST', web.allocations, allocation('vm-long', [{ kind: 'cpu', committed: 1 }]), key(long)),
        { status: 201, entries: 1 },
      );
    });
  });

  describe('concurrent retries', () => {
    it('100 concurrent POSTs with one key and body: one allocation, one answer', async () => {
      const revision = await lastRevisionOf(api.app, 'acme');
      const cpuBefore = (await quotasOf(api.app, 'acme')).cpu.committed;
      const body = allocation('vm-race', [{ kind: 'cpu', committed: 7 }]);
      const responses = await Promise.all(
        Array.from({ length: 100 }, () => call(api.app, 'POST', web.allocations, body, key('race-1'))),
      );
      const created = responses.filter((r) => r.status === 201);
      expect(created.length).toBeGreaterThanOrEqual(1);
      for (const response of responses) {
        if (response.status === 201) {
          expect(response.text).toBe(created[0]!.text);
          expect(response.headers.location).toBe(created[0]!.headers.location);
        } else {
          expectProblem(response, 'request-in-progress');
        }
      }
      expect(created.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
      const list = await getJson(api.app, `${web.allocations}?resourceId=vm-race`);
      expect(list.items.map((a: any) => a.id)).toEqual([created[0]!.json.id]);
      expect((await quotasOf(api.app, 'acme')).cpu.committed).toBe(cpuBefore + 7);
      const entries = (await journalOf(api.app, 'acme')).filter((e) => e.revision > revision);
      expect(entries.map((e) => e.action)).toEqual(['allocation.created']);
    });

    it('30 concurrent confirms with one key: one confirmation, all 200 with the same body', async () => {
      const created = await call(api.app, 'POST', web.holds, hold('vm-race-h', [{ kind: 'cpu', committed: 2 }]));
      expect(created.status).toBe(201);
      const revision = await lastRevisionOf(api.app, 'acme');
      const responses = await Promise.all(
        Array.from({ length: 30 }, () => call(api.app, 'POST', `${web.holds}/${created.json.id}/confirm`, undefined, key('race-confirm'))),
      );
      const confirmed = responses.filter((r) => r.status === 200);
      expect(confirmed.length).toBeGreaterThanOrEqual(1);
      for (const response of responses) {
        if (response.status === 200) expect(response.text).toBe(confirmed[0]!.text);
        else expectProblem(response, 'request-in-progress');
      }
      const entries = (await journalOf(api.app, 'acme')).filter((e) => e.revision > revision);
      expect(entries.map((e) => e.action)).toEqual(['hold.confirmed']);
    });

    it('the counters still equal the live allocations and holds', async () => {
      await assertLedgerInvariants(api.test.ledger, ['acme']);
    });
  });
});
