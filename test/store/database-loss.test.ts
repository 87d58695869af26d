// Goal: a PostgreSQL connection lost under a request is answered honestly. Lost before the
// commit, nothing was written: 503 with Retry-After, "nothing was changed", and a keyed retry
// runs the request. Lost during the commit (the change may have landed): 503 saying it may or
// may not have been made, never a 500 and never a refusal; a keyed retry answers the stored
// outcome (replayed, the same allocation) and the change is there once. A database that
// refuses connections is a 503 too, and requests succeed again once it is back. A keyed write
// whose claim was taken before the database went away does not hold its key once the database
// is back: the retry runs instead of answering 409 request-in-progress, even when it meets the
// claim while it is being given up.
// Method: a PostgreSQL cluster of the test's own (test/support/cluster.ts), since it is stopped
// and its server-wide settings changed; allot's app in process (app.inject) on a ledger whose
// connections carry an application_name, so the test finds and terminates exactly its
// backends. A loss before the commit: the test holds a lock the request waits for, then
// terminates the request's backend. A loss during the commit: synchronous_standby_names names
// a standby that never connects, so COMMIT is written locally and then waits (wait event
// SyncRep) until the test terminates its backend — the driver sees the connection end in the
// middle of COMMIT, as when a primary dies. The app logs errors, so an unexpected 500 says why.
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { engines } from '../support/engines.js';
import { waitFor } from '../support/wait.js';

const adminToken = 'database-loss-admin-token';
const auth = { authorization: `Bearer ${adminToken}` };
const applicationName = 'allot-under-test';

// Only PostgreSQL has connections to lose; SQLite runs in the process.
describe.skipIf(!engines.includes('postgres'))('a lost PostgreSQL connection (a cluster of its own)', () => {
  let cluster: Cluster;
  let ledger: Ledger;
  let app: FastifyInstance;

  const call = async (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await app.inject({ method, url, headers: { ...auth, ...headers }, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: response.statusCode, headers: response.headers, json: response.body ? response.json() : undefined };
  };
  const create = (id: string, key?: string) =>
    call('POST', '/v1/organizations/acme/projects/web/allocations', { resource: { kind: 'vm', id }, allocations: [{ kind: 'gpu', committed: 1 }] }, key ? { 'idempotency-key': key } : {});
  const allocationsOf = async (id: string) =>
    (await call('GET', `/v1/organizations/acme/allocations?resourceKind=vm&resourceId=${id}`)).json.items as { id: string }[];

  /** The pid of one of allot's backends once it waits on `event` (a lock, SyncRep). */
  const waitingBackend = (event: string) =>
    waitFor(`a backend of allot waiting on ${event}`, async () => {
      const { rows } = await cluster.sql(
        `SELECT pid FROM pg_stat_activity WHERE application_name = '${applicationName}' AND (wait_event_type = '${event}' OR wait_event = '${event}')`,
      );
      return rows.length > 0 ? Number(rows[0].pid) : undefined;
    }, 15_000, 25);
  /** Waits until one of allot's backends waits on `event`, and terminates it. */
  const terminateWhenWaiting = async (event: string) => {
    await cluster.sql(`SELECT pg_terminate_backend(${await waitingBackend(event)})`);
  };

  /** A session of the test's own holding a table lock until released. */
  const lockTable = async (table: string) => {
    const client = new pg.Client({ connectionString: cluster.url });
    client.on('error', () => undefined);
    await client.connect();
    await client.query(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    return async () => {
      await client.query('COMMIT').catch(() => undefined);
      await client.end().catch(() => undefined);
    };
  };

  beforeAll(async () => {
    cluster = await startCluster();
    ledger = await openLedger({ db: `${cluster.url}?application_name=${applicationName}` });
    app = await buildApp({ ledger, adminToken, logger: { level: "error" } });
    expect((await call('PUT', '/v1/resource-kinds/gpu', { displayName: 'GPUs', default: 0 })).status).toBeLessThan(300);
    expect((await call('PUT', '/v1/organizations/acme', {})).status).toBeLessThan(300);
    expect((await call('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 100 }] })).status).toBeLessThan(300);
    expect((await call('PUT', '/v1/organizations/acme/projects/web', {})).status).toBeLessThan(300);
    expect((await call('PUT', '/v1/regions/eu-1', {})).status).toBeLessThan(300);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await cluster?.destroy();
  });

  it('lost before the commit: 503 with Retry-After, nothing written, and a keyed retry runs it', async () => {
    const release = await lockTable('allocations');
    const answer = create('vm-before', 'key-before');
    await terminateWhenWaiting('Lock');
    const lost = await answer;
    await release();
    expect(lost.status).toBe(503);
    expect(lost.headers['retry-after']).toBe('1');
    expect(lost.json).toMatchObject({ type: '/problems/service-unavailable', detail: expect.stringContaining('nothing was changed') });
    expect(await allocationsOf('vm-before')).toEqual([]);

    const retried = await create('vm-before', 'key-before');
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(await allocationsOf('vm-before')).toHaveLength(1);
  });

  it('lost during the commit: 503 "may or may not", and a keyed retry answers what happened, once', async () => {
    await cluster.set('synchronous_standby_names', 'nobody');
    try {
      const keyed = create('vm-during', 'key-during');
      await terminateWhenWaiting('SyncRep');
      const lost = await keyed;
      expect(lost.status).toBe(503);
      expect(lost.headers['retry-after']).toBe('1');
      expect(lost.json.detail).toMatch(/may or may not have been made; retry with the same Idempotency-Key/);

      // Without a key the answer is the same; the client reads back by the resource's reference.
      const unkeyed = create('vm-during-unkeyed');
      await terminateWhenWaiting('SyncRep');
      expect((await unkeyed).status).toBe(503);
    } finally {
      await cluster.set('synchronous_standby_names', null);
    }
    // Both committed here (written locally before the wait): the retry replays, adding nothing.
    const [made] = await allocationsOf('vm-during');
    expect(made).toBeDefined();
    const retried = await create('vm-during', 'key-during');
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect(retried.json.id).toBe(made!.id);
    expect(await allocationsOf('vm-during')).toHaveLength(1);
    expect(await allocationsOf('vm-during-unkeyed')).toHaveLength(1);
    expect(await ledger.verifyCounters()).toEqual([]);
  });

  it('a database that is down answers 503, and requests succeed once it is back', async () => {
    await cluster.stop();
    try {
      const down = await create('vm-down');
      expect(down.status).toBe(503);
      expect(down.json.detail).toMatch(/database is unavailable/);
    } finally {
      await cluster.start();
    }
    expect((await create('vm-down')).status).toBe(201);
  });

  it('a retry that meets a claim being given up takes the key (no 500)', async () => {
    // Seen in a full run: the retry's insert met the old claim, which its releaser deleted
    // before the retry could lock it. Here a session of the test's own holds the claim's row
    // locked until the retry waits on it, then deletes it.
    const claim = await ledger.claimKey('someone', 'key-race', 'hash');
    expect(claim.kind).toBe('claimed');
    const holder = new pg.Client({ connectionString: cluster.url });
    await holder.connect();
    await holder.query(`BEGIN; SELECT * FROM idempotency_keys WHERE idempotency_key = 'key-race' FOR UPDATE`);
    const retry = ledger.claimKey('someone', 'key-race', 'hash');
    await waitingBackend('Lock');
    await holder.query(`DELETE FROM idempotency_keys WHERE idempotency_key = 'key-race'; COMMIT`);
    await holder.end();
    expect((await retry).kind).toBe('claimed');
  });

  it('a claim taken before the database went away is released once it is back: the retry runs, no 409', async () => {
    // A write that is not a decision claims its key in a transaction of its own, first.
    const limit = '/v1/organizations/acme/projects/web/limits/compute/instances';
    const body = { regions: [{ region: 'eu-1', limit: 5 }] };
    const headers = { 'idempotency-key': 'key-limit' };
    await lockTable('limits');
    const answer = call('PUT', limit, body, headers);
    // The claim has committed once the write waits for the lock; then the whole server goes.
    await waitingBackend('Lock');
    await cluster.stop();
    const lost = await answer;
    expect(lost.status).toBe(503);
    await cluster.start();
    const retried = await call('PUT', limit, body, headers);
    expect(retried.status, JSON.stringify(retried.json)).toBe(200);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect((await call('GET', '/v1/organizations/acme/projects/web/limits')).json.items).toHaveLength(1);

  });
});
