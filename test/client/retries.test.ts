// Goal: the client's retries are safe and bounded. A mutating request whose answer is lost
// (the connection dropped, or a 503 from in front of the server, after the server applied it)
// is sent again with the same Idempotency-Key and applied once: the server replays its first
// answer. 503 and 429 are retried after Retry-After (seconds or an HTTP date), 409
// request-in-progress with the same key; a POST the server does not key is never repeated after
// a dropped connection; no other 4xx is retried; attempts are bounded. Read-modify-write re-reads
// after a 412 caused by a concurrent writer and applies both writers' changes.
// Method: a real server per engine behind a fault-injecting HTTP proxy (support.ts) that records
// every request it sees (its Idempotency-Key, when it came, whether the server got it). "Applied
// once" is read from the books: the journal's entries for the allocation and the quota's usage.
// Timing is measured loosely (a lower bound only). The policy cases that do not depend on the
// engine run on the first engine only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffMs, retryAfterMs } from '../../src/client/retry.js';
import { AllotProblem, type AllotClient } from '../../src/client/index.js';
import { engines } from '../support/engines.js';
import { readAll } from '../support/journal.js';
import { problemBody, quickRetries, startClientServer, startFaultyProxy, type ClientServer, type FaultyProxy, type Fault } from './support.js';

const organization = 'acme';
const org = { organization };
const proj = { organization, project: 'web' };
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Setup {
  server: ClientServer;
  proxy: FaultyProxy;
  /** Through the proxy. */
  client: AllotClient;
  /** Straight to the server. */
  direct: AllotClient;
}

async function setUp(engine: (typeof engines)[number]): Promise<Setup> {
  const server = await startClientServer(engine);
  const proxy = await startFaultyProxy(server.url);
  const direct = server.client();
  await direct.PUT('/v1/resource-kinds/{kind}', { params: { path: { kind: 'gpus' } }, body: { displayName: 'GPUs' } });
  await direct.PUT('/v1/organizations/{organization}', { params: { path: org }, body: {} });
  await direct.PUT('/v1/organizations/{organization}/projects/{project}', { params: { path: proj }, body: {} });
  await direct.PUT('/v1/organizations/{organization}/quotas', { params: { path: org }, body: { quotas: [{ kind: 'gpus', quantity: 100 }] } });
  return { server, proxy, direct, client: server.client({ baseUrl: proxy.url }) };
}

async function tearDown(setup: Setup | undefined) {
  await setup?.proxy.close();
  await setup?.server.close();
}

/** The requests the proxy sees while `run` runs. */
async function attemptsOf(proxy: FaultyProxy, run: () => Promise<unknown>) {
  const from = proxy.seen.length;
  let outcome: unknown;
  try {
    outcome = await run();
  } catch (error) {
    outcome = error;
  }
  return { attempts: proxy.seen.slice(from), outcome };
}

const allocationBody = (id: string, committed = 2) => ({ resource: { kind: 'server', id }, allocations: [{ kind: 'gpus', committed }] });

describe.each(engines)('idempotent retries against a server (%s)', (engine) => {
  let setup: Setup;
  const used = async () =>
    (await setup.direct.GET('/v1/organizations/{organization}/quotas', { params: { path: org } })).data.quotas.find((q) => q.kind === 'gpus')!.used;

  beforeAll(async () => {
    setup = await setUp(engine);
  });
  afterAll(async () => tearDown(setup));

  const lost: [string, Fault][] = [
    ['the connection drops after the server answered', { kind: 'drop-after' }],
    ['a 503 replaces the answer the server gave', { kind: 'status-after', status: 503 }],
  ];
  it.each(lost)('a POST whose answer is lost (%s) is sent again with its key and applied once', async (label, fault) => {
    const { client, proxy, server } = setup;
    const before = await used();
    proxy.faults.push(fault);
    const resource = `srv-${fault.kind}`;
    const post = () =>
      client.POST('/v1/organizations/{organization}/projects/{project}/allocations', { params: { path: proj }, body: allocationBody(resource) });
    const { attempts, outcome } = await attemptsOf(proxy, post);
    expect(outcome, label).not.toBeInstanceOf(Error);
    const created = outcome as Awaited<ReturnType<typeof post>>;
    // Both attempts reached the server, with one key: the second got the first's answer again.
    expect(attempts.map((attempt) => attempt.forwarded)).toEqual([true, true]);
    expect(attempts[0]!.idempotencyKey).toMatch(uuid);
    expect(attempts[1]!.idempotencyKey).toBe(attempts[0]!.idempotencyKey);
    expect(created.status).toBe(201);
    expect(created.replayed).toBe(true);
    // Applied once: one journal entry, usage up by 2 (not 4), one live allocation.
    const entries = (await readAll(server.test.ledger, organization)).filter((entry) => entry.subject === created.data.id);
    expect(entries.map((entry) => entry.action)).toEqual(['allocation.created']);
    expect(await used()).toBe(before + 2);
    const live = await setup.direct.GET('/v1/organizations/{organization}/projects/{project}/allocations', {
      params: { path: proj, query: { resourceKind: 'server', resourceId: resource } },
    });
    expect(live.data.items.map((item) => item.id)).toEqual([created.data.id]);
  });

  it('a batch whose connection drops is applied once, and the caller’s own key is the one sent', async () => {
    const { client, proxy, server } = setup;
    proxy.faults.push({ kind: 'drop-after' });
    const key = `batch-${engine}-1`;
    const { attempts, outcome } = await attemptsOf(proxy, () =>
      client.POST('/v1/organizations/{organization}/batch', {
        params: { path: org, header: { 'idempotency-key': key } },
        body: {
          mode: 'independent',
          operations: [
            { op: 'allocation.create', project: 'web', body: allocationBody('srv-batch-1', 1) },
            { op: 'allocation.create', project: 'web', body: allocationBody('srv-batch-2', 1) },
          ],
        },
      }),
    );
    expect(outcome).not.toBeInstanceOf(Error);
    expect(attempts.map((attempt) => attempt.idempotencyKey)).toEqual([key, key]);
    const batch = outcome as { data: { results: { status: number | null }[] }; replayed: boolean };
    expect(batch.replayed).toBe(true);
    expect(batch.data.results.map((result) => result.status)).toEqual([201, 201]);
    const created = (await readAll(server.test.ledger, organization)).filter((entry) => entry.action === 'allocation.created');
    expect(created.filter((entry) => JSON.stringify(entry).includes('srv-batch-'))).toHaveLength(2);
  });

  it('read-modify-write re-reads after a concurrent writer’s change (412) and keeps both changes', async () => {
    const { client, direct } = setup;
    const quantity = async () =>
      (await direct.GET('/v1/organizations/{organization}/quotas', { params: { path: org } })).data.quotas.find((q) => q.kind === 'gpus')!.quantity!;
    const start = await quantity();
    const seen: number[] = [];
    const written = await client.update('/v1/organizations/{organization}/quotas', { path: org }, async (current) => {
      const gpus = current.quotas.find((q) => q.kind === 'gpus')!.quantity!;
      seen.push(gpus);
      // The first time, another writer raises the quota between this read and its write.
      if (seen.length === 1) {
        await direct.update('/v1/organizations/{organization}/quotas', { path: org }, (theirs) => ({
          quotas: [{ kind: 'gpus', quantity: theirs.quotas.find((q) => q.kind === 'gpus')!.quantity! + 5 }],
        }));
      }
      return { quotas: [{ kind: 'gpus', quantity: gpus + 1 }] };
    });
    expect(seen).toEqual([start, start + 5]);
    expect(written.data.quotas.find((q) => q.kind === 'gpus')!.quantity).toBe(start + 6);
    expect(await quantity()).toBe(start + 6);
    // The stale write was refused with 412 and sent once: update() does not replay it, it re-reads.
    const statuses = setup.proxy.seen.filter((request) => request.method === 'PUT').map((request) => request.status);
    expect(statuses.slice(-2)).toEqual([412, 200]);
  });
});

describe('the retry policy', () => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await setUp(engines[0]!);
  });
  afterAll(async () => tearDown(setup));
  const read = () => setup.client.GET('/v1/organizations/{organization}', { params: { path: org } });

  it('honours Retry-After in seconds on a 503, keeping the key of a POST the server never saw', async () => {
    const { client, proxy } = setup;
    proxy.faults.push({ kind: 'status', status: 503, headers: { 'retry-after': '1' } });
    const { attempts, outcome } = await attemptsOf(proxy, () =>
      client.POST('/v1/organizations/{organization}/projects/{project}/allocations', { params: { path: proj }, body: allocationBody('srv-after') }),
    );
    expect(outcome).not.toBeInstanceOf(Error);
    expect(attempts.map((attempt) => [attempt.forwarded, attempt.status])).toEqual([[false, 503], [true, 201]]);
    expect(attempts[1]!.idempotencyKey).toBe(attempts[0]!.idempotencyKey);
    expect(attempts[1]!.atMs - attempts[0]!.atMs).toBeGreaterThanOrEqual(900);
  });

  it('honours Retry-After as an HTTP date on a 429', async () => {
    const { proxy } = setup;
    // A date has whole seconds: two seconds ahead is more than one second away.
    const date = new Date(new Date().getTime() + 2000).toUTCString();
    proxy.faults.push({ kind: 'status', status: 429, headers: { 'retry-after': date }, body: problemBody(429, 'too-many-requests') });
    const { attempts, outcome } = await attemptsOf(proxy, read);
    expect(outcome).not.toBeInstanceOf(Error);
    expect(attempts.map((attempt) => attempt.status)).toEqual([429, 200]);
    expect(attempts[1]!.atMs - attempts[0]!.atMs).toBeGreaterThanOrEqual(900);
  });

  it('does not wait out a Retry-After beyond its bound: the 429 is thrown', async () => {
    const { proxy, server } = setup;
    const client = server.client({ baseUrl: proxy.url, retries: { ...quickRetries, maxRetryAfterMs: 1000 } });
    proxy.faults.push({ kind: 'status', status: 429, headers: { 'retry-after': '60' }, body: problemBody(429, 'too-many-requests') });
    const { attempts, outcome } = await attemptsOf(proxy, () => client.GET('/v1/whoami'));
    expect(attempts).toHaveLength(1);
    expect(outcome).toBeInstanceOf(AllotProblem);
    expect(outcome).toMatchObject({ code: 'too-many-requests', status: 429 });
  });

  it('stops after its retries: the last 503 is thrown', async () => {
    const { proxy, server } = setup;
    const client = server.client({ baseUrl: proxy.url, retries: { ...quickRetries, retries: 2 } });
    proxy.faults.push(...Array.from({ length: 3 }, (): Fault => ({ kind: 'status', status: 503 })));
    const { attempts, outcome } = await attemptsOf(proxy, () => client.GET('/v1/whoami'));
    expect(attempts).toHaveLength(3);
    expect(outcome).toMatchObject({ code: 'service-unavailable', status: 503 });
    expect(proxy.faults).toEqual([]);
  });

  it('retries 409 request-in-progress with the same key', async () => {
    const { client, proxy } = setup;
    proxy.faults.push({ kind: 'status', status: 409, body: problemBody(409, 'request-in-progress') });
    const { attempts, outcome } = await attemptsOf(proxy, () =>
      client.POST('/v1/organizations/{organization}/projects/{project}/allocations', { params: { path: proj }, body: allocationBody('srv-progress') }),
    );
    expect(outcome).not.toBeInstanceOf(Error);
    expect(attempts.map((attempt) => attempt.status)).toEqual([409, 201]);
    expect(attempts[1]!.idempotencyKey).toBe(attempts[0]!.idempotencyKey);
  });

  it('never retries another 4xx: a denial, a stale ETag, a missing resource', async () => {
    const { client, proxy } = setup;
    const denial = await attemptsOf(proxy, () =>
      client.POST('/v1/organizations/{organization}/projects/{project}/allocations', { params: { path: proj }, body: allocationBody('srv-big', 1000) }),
    );
    expect(denial.attempts.map((attempt) => attempt.status)).toEqual([409]);
    expect(denial.outcome).toMatchObject({ code: 'quota-exceeded' });
    const stale = await attemptsOf(proxy, () =>
      client.PUT('/v1/organizations/{organization}/quotas', {
        params: { path: org, header: { 'if-match': '"999"' } },
        body: { quotas: [{ kind: 'gpus', quantity: 100 }] },
      }),
    );
    expect(stale.attempts.map((attempt) => attempt.status)).toEqual([412]);
    const missing = await attemptsOf(proxy, () => client.GET('/v1/organizations/{organization}', { params: { path: { organization: 'nobody' } } }));
    expect(missing.attempts.map((attempt) => attempt.status)).toEqual([404]);
  });

  it('repeats a read after a dropped connection, never a POST the server does not key', async () => {
    const { client, proxy, direct } = setup;
    proxy.faults.push({ kind: 'drop-after' });
    const again = await attemptsOf(proxy, read);
    expect(again.attempts).toHaveLength(2);
    expect(again.outcome).not.toBeInstanceOf(Error);

    const before = (await direct.GET('/v1/tokens')).data.items.length;
    proxy.faults.push({ kind: 'drop-after' });
    const token = await attemptsOf(proxy, () => client.POST('/v1/tokens', { body: { role: 'reader', organization } }));
    expect(token.attempts).toHaveLength(1);
    expect(token.outcome).toBeInstanceOf(TypeError);
    expect((await direct.GET('/v1/tokens')).data.items.length).toBe(before + 1);
  });

  it('retries: 0 sends every request once', async () => {
    const { proxy, server } = setup;
    const client = server.client({ baseUrl: proxy.url, retries: 0 });
    proxy.faults.push({ kind: 'status', status: 503 });
    const { attempts, outcome } = await attemptsOf(proxy, () => client.GET('/v1/whoami'));
    expect(attempts).toHaveLength(1);
    expect(outcome).toMatchObject({ code: 'service-unavailable' });
  });

  it('an option left undefined keeps its default: retries stay bounded', async () => {
    const { proxy, server } = setup;
    const client = server.client({ baseUrl: proxy.url, retries: { retries: undefined, baseDelayMs: 1, maxDelayMs: 2 } });
    proxy.faults.push(...Array.from({ length: 5 }, (): Fault => ({ kind: 'status', status: 503 })));
    const { attempts, outcome } = await attemptsOf(proxy, () => client.GET('/v1/whoami'));
    expect(attempts).toHaveLength(4);
    expect(outcome).toMatchObject({ code: 'service-unavailable' });
    proxy.faults.length = 0;
  });

  it('Retry-After and backoff, computed', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
    const options = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 60_000 };
    for (const [retry, ceiling] of [[1, 100], [2, 200], [3, 400], [4, 800], [5, 1000], [9, 1000]] as const) {
      expect(backoffMs(retry, options, () => 0)).toBe(ceiling / 2);
      expect(backoffMs(retry, options, () => 0.999999)).toBeCloseTo(ceiling, 0);
    }
  });
});
