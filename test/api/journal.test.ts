// Goal: GET /v1/organizations/{org}/journal?after=&limit= pages `{items, lastRevision}`; every
// change — quota set, allocation created/updated/deleted, hold created/confirmed/released/
// expired — has exactly one entry, with gap-free revisions 1..N per organization, principal
// 'admin' (or 'system' for expiries resolved by sweepExpiredHolds), and the time of the
// change; refused requests (409, 412, 400, 404, idempotent replays, a repeated DELETE) add
// none; summing every entry's deltas per kind gives the counters GET quotas shows (committed,
// reserved, held). An unknown organization is 404 and a bad `after` or `limit` is 400. (The
// SSE …/watch route needs a real socket and is covered elsewhere.)
// Method: per engine, a fresh ledger on a ManualClock and the app; a scripted sequence of
// requests through `app.inject`, each followed by reading the journal after the revision it
// started from and comparing the new entries (action, subject, project, principal, time) with
// what that step should have journaled — nothing, for a refusal. One expiry is resolved by
// calling `ledger.sweepExpiredHolds()` (what the server's sweeper does). Then the whole
// journal is paged with several limits and replayed against GET quotas.
import type { HTTPMethods } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocation, hold } from '../support/bodies.js';
import { engines } from '../support/engines.js';
import { closeApi, expectProblem, getJson, quotasOf, runCase, send } from './harness.js';
import {
  call,
  Gi,
  journalOf,
  lastRevisionOf,
  openClockedApi,
  setupCases,
  sumOfDeltas,
  urls,
  type ClockedApi,
  type JournalEntry,
} from './harness-extra.js';

const web = urls('acme', 'web');
const apiProject = urls('acme', 'api');

interface Expected {
  action: string;
  /** The name of the remembered id the entry is about; null for quota changes. */
  subject: string | null;
  project: string | null;
  principal?: string;
}

interface Step {
  name: string;
  method?: HTTPMethods;
  url?: () => string;
  body?: unknown;
  headers?: Record<string, string>;
  status?: number;
  /** Remember the answer's id under this name. */
  remember?: string;
  /** Move the ManualClock before the request. */
  advanceMs?: number;
  /** Instead of a request, run the hold sweeper. */
  sweep?: boolean;
  /** What the step adds to acme's journal, in order: nothing for a refusal. */
  entries: Expected[];
}

const created = (subject: string, project = 'web'): Expected => ({ action: 'allocation.created', subject, project });
const entry = (action: string, subject: string | null, project: string | null = 'web', principal = 'admin'): Expected => ({
  action,
  subject,
  project,
  principal,
});

describe.each(engines)('journal API on %s', (engine) => {
  let api: ClockedApi;
  const ids: Record<string, string> = {};
  /** Every entry acme's journal should hold, in order, as the steps add them. */
  const expected: Expected[] = [];

  beforeAll(async () => {
    api = await openClockedApi(engine);
    const setup = setupCases({
      kinds: { gpus: { displayName: 'GPUs' }, ram: { displayName: 'RAM', format: 'binary' }, cpu: { displayName: 'CPU' } },
      organizations: { acme: ['web', 'api'], beta: ['main'] },
    });
    for (const apiCase of setup) await runCase(api.app, apiCase);
  });
  afterAll(() => closeApi(api));

  it('a new organization has an empty journal: lastRevision 0', async () => {
    expect(await getJson(api.app, web.journal)).toEqual({ items: [], lastRevision: 0 });
  });

  const steps: Step[] = [
    { name: 'PUT quotas → quota.set', method: 'PUT', url: () => web.quotas, body: { quotas: [{ kind: 'gpus', quantity: 10 }, { kind: 'ram', quantity: '4Gi' }] }, status: 200, entries: [entry('quota.set', null, null)] },
    { name: 'POST allocation a1 → allocation.created', method: 'POST', url: () => web.allocations, body: allocation('a-1', [{ kind: 'gpus', committed: 2 }, { kind: 'ram', reserved: '1Gi' }]), status: 201, remember: 'a1', entries: [created('a1')] },
    { name: 'PUT a1 → allocation.updated', method: 'PUT', url: () => `${web.allocations}/${ids.a1}`, body: allocation('a-1', [{ kind: 'gpus', committed: 3, reserved: 1 }]), status: 200, entries: [entry('allocation.updated', 'a1')] },
    // Refusals add nothing.
    { name: 'refused: over quota (409)', method: 'POST', url: () => web.allocations, body: allocation('a-big', [{ kind: 'gpus', committed: 20 }]), status: 409, entries: [] },
    { name: 'refused: duplicate resource (409)', method: 'POST', url: () => web.allocations, body: allocation('a-1', [{ kind: 'cpu', committed: 1 }]), status: 409, entries: [] },
    { name: 'refused: stale If-Match on PUT allocation (412)', method: 'PUT', url: () => `${web.allocations}/${ids.a1}`, headers: { 'if-match': '"1"' }, body: allocation('a-1', [{ kind: 'gpus', committed: 1 }]), status: 412, entries: [] },
    { name: 'refused: quota below usage (409)', method: 'PUT', url: () => web.quotas, body: { quotas: [{ kind: 'gpus', quantity: 1 }] }, status: 409, entries: [] },
    { name: 'refused: stale If-Match on PUT quotas (412)', method: 'PUT', url: () => web.quotas, headers: { 'if-match': '"0"' }, body: { quotas: [{ kind: 'gpus', quantity: 9 }] }, status: 412, entries: [] },
    { name: 'refused: unknown kind (400)', method: 'POST', url: () => web.allocations, body: allocation('a-x', [{ kind: 'nope', committed: 1 }]), status: 400, entries: [] },
    { name: 'refused: unknown project (404)', method: 'POST', url: () => urls('acme', 'nope').allocations, body: allocation('a-x', [{ kind: 'cpu', committed: 1 }]), status: 404, entries: [] },
    // Holds: created, confirmed, released.
    { name: 'POST hold h1 → hold.created', method: 'POST', url: () => web.holds, body: hold('h-1', [{ kind: 'gpus', committed: 2 }]), status: 201, remember: 'h1', entries: [entry('hold.created', 'h1')] },
    { name: 'refused: hold over quota (409)', method: 'POST', url: () => web.holds, body: hold('h-big', [{ kind: 'gpus', committed: 9 }]), status: 409, entries: [] },
    { name: 'refused: confirm for more than held (409)', method: 'POST', url: () => `${web.holds}/${ids.h1}/confirm`, body: { allocations: [{ kind: 'gpus', committed: 3 }] }, status: 409, entries: [] },
    { name: 'refused: confirm with a stale If-Match (412)', method: 'POST', url: () => `${web.holds}/${ids.h1}/confirm`, headers: { 'if-match': '"5"' }, status: 412, entries: [] },
    { name: 'confirm h1 for less → hold.confirmed', method: 'POST', url: () => `${web.holds}/${ids.h1}/confirm`, body: { allocations: [{ kind: 'gpus', committed: 1 }] }, status: 200, entries: [entry('hold.confirmed', 'h1')] },
    { name: 'refused: confirm h1 again (409 hold-already-resolved)', method: 'POST', url: () => `${web.holds}/${ids.h1}/confirm`, status: 409, entries: [] },
    { name: 'POST hold h2 in project api → hold.created (project api)', method: 'POST', url: () => apiProject.holds, body: hold('h-2', [{ kind: 'cpu', committed: 3 }]), status: 201, remember: 'h2', entries: [entry('hold.created', 'h2', 'api')] },
    { name: 'release h2 → hold.released', method: 'POST', url: () => `${apiProject.holds}/${ids.h2}/release`, status: 200, entries: [entry('hold.released', 'h2', 'api')] },
    { name: 'refused: release h2 again (409)', method: 'POST', url: () => `${apiProject.holds}/${ids.h2}/release`, status: 409, entries: [] },
    // Expiry resolved by the next decision: journaled under that request's principal, first.
    { name: 'POST hold h3 (ttl 10 s) → hold.created', method: 'POST', url: () => web.holds, body: hold('h-3', [{ kind: 'ram', committed: '1Gi' }], 10), status: 201, remember: 'h3', entries: [entry('hold.created', 'h3')] },
    {
      name: '10 s later, POST allocation a2 → hold.expired (h3), then allocation.created',
      advanceMs: 10_000,
      method: 'POST',
      url: () => web.allocations,
      body: allocation('a-2', [{ kind: 'cpu', committed: 1 }]),
      status: 201,
      remember: 'a2',
      entries: [entry('hold.expired', 'h3'), created('a2')],
    },
    // Expiry resolved by the sweeper: principal 'system'.
    { name: 'POST hold h4 (ttl 5 s) → hold.created', method: 'POST', url: () => web.holds, body: hold('h-4', [{ kind: 'gpus', reserved: 1 }], 5), status: 201, remember: 'h4', entries: [entry('hold.created', 'h4')] },
    { name: '5 s later, reading the journal resolves nothing', advanceMs: 5_000, method: 'GET', url: () => web.journal, status: 200, entries: [] },
    { name: 'sweepExpiredHolds → hold.expired (h4) by system', sweep: true, entries: [entry('hold.expired', 'h4', 'web', 'system')] },
    // Expiry found by a refused confirm: the refusal adds nothing, the expiry its entry.
    { name: 'POST hold h5 (ttl 5 s) → hold.created', method: 'POST', url: () => web.holds, body: hold('h-5', [{ kind: 'cpu', committed: 2 }], 5), status: 201, remember: 'h5', entries: [entry('hold.created', 'h5')] },
    {
      name: '5 s later, confirm h5 → 409; only hold.expired (h5) is journaled',
      advanceMs: 5_000,
      method: 'POST',
      url: () => `${web.holds}/${ids.h5}/confirm`,
      status: 409,
      entries: [entry('hold.expired', 'h5')],
    },
    { name: 'refused: release h5 (409)', method: 'POST', url: () => `${web.holds}/${ids.h5}/release`, status: 409, entries: [] },
    // Deletes, and the confirmed hold as an allocation.
    { name: 'DELETE a1 → allocation.deleted', method: 'DELETE', url: () => `${web.allocations}/${ids.a1}`, status: 204, entries: [entry('allocation.deleted', 'a1')] },
    { name: 'DELETE a1 again → 204, no entry', method: 'DELETE', url: () => `${web.allocations}/${ids.a1}`, status: 204, entries: [] },
    { name: 'PUT the confirmed hold h1 as an allocation → allocation.updated', method: 'PUT', url: () => `${web.allocations}/${ids.h1}`, body: allocation('h-1', [{ kind: 'gpus', committed: 1, reserved: 1 }]), status: 200, entries: [entry('allocation.updated', 'h1')] },
    { name: 'PUT quotas again → quota.set', method: 'PUT', url: () => web.quotas, body: { quotas: [{ kind: 'cpu', quantity: 100 }, { kind: 'ram', quantity: null }] }, status: 200, entries: [entry('quota.set', null, null)] },
    // Idempotent replays add nothing.
    { name: 'POST allocation a3 with a key → allocation.created', method: 'POST', url: () => web.allocations, headers: { 'idempotency-key': 'a3' }, body: allocation('a-3', [{ kind: 'cpu', reserved: 4 }]), status: 201, remember: 'a3', entries: [created('a3')] },
    { name: 'its replay → 201, no entry', method: 'POST', url: () => web.allocations, headers: { 'idempotency-key': 'a3' }, body: allocation('a-3', [{ kind: 'cpu', reserved: 4 }]), status: 201, entries: [] },
    { name: 'refused: its key reused for another body (422)', method: 'POST', url: () => web.allocations, headers: { 'idempotency-key': 'a3' }, body: allocation('a-4', [{ kind: 'cpu', reserved: 4 }]), status: 422, entries: [] },
    { name: 'another organization’s change → nothing in acme’s journal', method: 'PUT', url: () => '/v1/organizations/beta/quotas', body: { quotas: [{ kind: 'gpus', quantity: 5 }] }, status: 200, entries: [] },
  ];

  for (const step of steps) {
    it(step.name, async () => {
      if (step.advanceMs) api.clock.advance(step.advanceMs);
      const before = await lastRevisionOf(api.app, 'acme');
      if (step.sweep) {
        expect(await api.test.ledger.sweepExpiredHolds()).toBe(step.entries.length);
      } else {
        const response = await send(api.app, {
          method: step.method!,
          url: step.url!(),
          ...(step.body === undefined ? {} : { body: step.body }),
          ...(step.headers ? { headers: step.headers } : {}),
        });
        expect(response.status, response.text.slice(0, 300)).toBe(step.status);
        if (step.remember) ids[step.remember] = response.json.id;
      }
      const page = await getJson(api.app, `${web.journal}?after=${before}`);
      const now = new Date(api.clock.nowMs()).toISOString();
      expect(page.lastRevision).toBe(before + step.entries.length);
      expect(page.items.map((e: JournalEntry) => e.revision)).toEqual(step.entries.map((_, index) => before + index + 1));
      step.entries.forEach((want, index) => {
        expect(page.items[index]).toMatchObject({
          organization: 'acme',
          action: want.action,
          subject: want.subject === null ? null : ids[want.subject],
          project: want.project,
          principal: want.principal ?? 'admin',
          at: now,
        });
      });
      expected.push(...step.entries);
    });
  }

  it('the whole journal: one entry per change, revisions 1..N without gaps, every action', async () => {
    const entries = await journalOf(api.app, 'acme');
    expect(entries.map((e) => e.revision)).toEqual(expected.map((_, index) => index + 1));
    expect(entries.map((e) => [e.action, e.subject, e.principal])).toEqual(
      expected.map((want) => [want.action, want.subject === null ? null : ids[want.subject], want.principal ?? 'admin']),
    );
    expect(new Set(entries.map((e) => e.action))).toEqual(
      new Set([
        'quota.set',
        'allocation.created',
        'allocation.updated',
        'allocation.deleted',
        'hold.created',
        'hold.confirmed',
        'hold.released',
        'hold.expired',
      ]),
    );
    for (const e of entries) {
      expect(Object.keys(e).sort()).toEqual(['action', 'at', 'changes', 'deltas', 'organization', 'principal', 'project', 'revision', 'subject']);
      expect(e.organization).toBe('acme');
    }
  });

  it('paging with limit 1, 3 or 1000 reads the same entries', async () => {
    const all = await journalOf(api.app, 'acme', 1000);
    expect(await journalOf(api.app, 'acme', 1)).toEqual(all);
    expect(await journalOf(api.app, 'acme', 3)).toEqual(all);
  });

  it('each entry’s deltas say how it moved the counters', async () => {
    const entries = await journalOf(api.app, 'acme');
    const of = (action: string, subject: string) => entries.find((e) => e.action === action && e.subject === ids[subject])!;
    expect(entries.filter((e) => e.action === 'quota.set').every((e) => e.deltas.length === 0)).toBe(true);
    expect(of('allocation.created', 'a1').deltas).toEqual([
      { kind: 'gpus', committed: 2, reserved: 0, held: 0 },
      { kind: 'ram', committed: 0, reserved: Gi, held: 0 },
    ]);
    expect(of('allocation.updated', 'a1').deltas).toEqual([
      { kind: 'gpus', committed: 1, reserved: 1, held: 0 },
      { kind: 'ram', committed: 0, reserved: -Gi, held: 0 },
    ]);
    expect(of('hold.created', 'h1').deltas).toEqual([{ kind: 'gpus', committed: 0, reserved: 0, held: 2 }]);
    expect(of('hold.confirmed', 'h1').deltas).toEqual([{ kind: 'gpus', committed: 1, reserved: 0, held: -2 }]);
    expect(of('hold.released', 'h2').deltas).toEqual([{ kind: 'cpu', committed: 0, reserved: 0, held: -3 }]);
    expect(of('hold.expired', 'h3').deltas).toEqual([{ kind: 'ram', committed: 0, reserved: 0, held: -Gi }]);
    expect(of('hold.expired', 'h4').deltas).toEqual([{ kind: 'gpus', committed: 0, reserved: 0, held: -1 }]);
    expect(of('allocation.deleted', 'a1').deltas).toEqual([{ kind: 'gpus', committed: -3, reserved: -1, held: 0 }]);
  });

  it('summing every entry’s deltas per kind reproduces GET quotas (committed, reserved, held)', async () => {
    const sums = sumOfDeltas(await journalOf(api.app, 'acme'));
    const quotas = await quotasOf(api.app, 'acme');
    for (const [kind, row] of Object.entries(quotas)) {
      const sum = sums[kind] ?? { committed: 0, reserved: 0, held: 0 };
      expect({ kind, committed: row.committed, reserved: row.reserved, held: row.held }).toEqual({ kind, ...sum });
    }
    // Something is actually in use, or this would prove little.
    expect(quotas.cpu).toMatchObject({ committed: 1, reserved: 4, held: 0 });
    expect(quotas.gpus).toMatchObject({ committed: 1, reserved: 1, held: 0 });
  });

  it('every organization has its own journal, numbered from 1', async () => {
    const beta = await journalOf(api.app, 'beta');
    expect(beta.map((e) => [e.revision, e.organization, e.action])).toEqual([[1, 'beta', 'quota.set']]);
  });

  it('after and limit: pages, lastRevision, and past the end', async () => {
    const last = await lastRevisionOf(api.app, 'acme');
    expect(last).toBe(expected.length);
    const first = await getJson(api.app, `${web.journal}?limit=2`);
    expect(first.items.map((e: JournalEntry) => e.revision)).toEqual([1, 2]);
    expect(first.lastRevision).toBe(2);
    const next = await getJson(api.app, `${web.journal}?after=2&limit=2`);
    expect(next.items.map((e: JournalEntry) => e.revision)).toEqual([3, 4]);
    expect(next.lastRevision).toBe(4);
    const all = await getJson(api.app, web.journal);
    expect(all.items).toHaveLength(last);
    expect(all.lastRevision).toBe(last);
    expect(await getJson(api.app, `${web.journal}?after=${last}`)).toEqual({ items: [], lastRevision: last });
    expect(await getJson(api.app, `${web.journal}?after=${last + 100}&limit=5`)).toEqual({ items: [], lastRevision: last + 100 });
  });

  it('tail: the newest entries, oldest first, where a live feed starts', async () => {
    const all = await journalOf(api.app, 'acme', 1000);
    const tail = await getJson(api.app, `${web.journal}?tail=3`);
    expect(tail).toEqual({ items: all.slice(-3), lastRevision: all.length });
    expect((await getJson(api.app, `${web.journal}?tail=1000`)).items).toEqual(all);
    await api.test.ledger.putOrganization('gamma', {});
    expect(await getJson(api.app, '/v1/organizations/gamma/journal?tail=5')).toEqual({ items: [], lastRevision: 0 });
  });

  it('an unknown organization → 404', async () => {
    expectProblem(await call(api.app, 'GET', '/v1/organizations/nope/journal?tail=5'), 'not-found');
    expectProblem(await call(api.app, 'GET', '/v1/organizations/nope/journal'), 'not-found');
    expectProblem(await call(api.app, 'GET', '/v1/organizations/nope/journal?after=3'), 'not-found');
  });

  for (const query of ['after=abc', 'after=-1', 'after=1.5', 'after=', 'after=1e3', 'limit=0', 'limit=1001', 'limit=abc', 'limit=-1', 'since=1', 'tail=0', 'tail=1001', 'tail=x', 'tail=2&after=1', 'tail=2&limit=1']) {
    it(`?${query} → 400`, async () => {
      const response = await call(api.app, 'GET', `${web.journal}?${query}`);
      expectProblem(response, 'invalid-request');
    });
  }
});
