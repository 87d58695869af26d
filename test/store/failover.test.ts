// Goal: a 2xx survives the loss of the primary that committed it. allot, given both hosts
// (`postgres://h1,h2/…?target_session_attrs=read-write`), writes to the primary; the primary
// dies under load and its synchronous standby is promoted; allot finds the new primary by
// itself, with no restart, and goes on. Every acknowledged create is on the new primary;
// nothing is answered 500 (only 2xx, or 503 for what was in flight or refused while no host
// accepted writes); each 503 retried with its key ends in exactly one allocation; the
// counters equal the allocations.
// Method: two clusters of the test's own (test/support/cluster.ts): a primary and a streaming
// standby made synchronous (synchronous_standby_names = '*', so a commit returns only once the
// standby has its WAL). Four clients create allocations with unique resources and keys through
// allot's app in process; the primary is stopped with -m immediate (a crash), the standby is
// promoted a moment later, the load goes on, then every 503 is retried with its key.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { engines } from '../support/engines.js';
import { waitFor } from '../support/wait.js';

const adminToken = 'failover-admin-token-for-tests';
const auth = { authorization: `Bearer ${adminToken}` };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!engines.includes('postgres'))('failover to a synchronous standby', () => {
  let primary: Cluster;
  let standby: Cluster;
  let ledger: Ledger;
  let app: FastifyInstance;

  const create = async (id: string) => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/organizations/acme/projects/web/allocations',
      headers: { ...auth, 'idempotency-key': `key-${id}` },
      payload: { resource: { kind: 'vm', id }, allocations: [{ kind: 'gpu', committed: 1 }] },
    });
    return { status: response.statusCode, body: response.json() as { id?: string; detail?: string } };
  };

  beforeAll(async () => {
    primary = await startCluster();
    standby = await startCluster(primary);
    await primary.set('synchronous_standby_names', '*');
    await waitFor('the standby to become synchronous', async () =>
      (await primary.sql(`SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'`)).rows.length > 0 ? true : undefined, 10_000, 25);
    const hosts = `127.0.0.1:${primary.port},127.0.0.1:${standby.port}`;
    ledger = await openLedger({ db: `postgres://postgres@${hosts}/postgres?target_session_attrs=read-write` });
    app = await buildApp({ ledger, adminToken, logger: { level: 'error' } });
    const put = async (url: string, payload: object) =>
      expect((await app.inject({ method: 'PUT', url, headers: auth, payload })).statusCode).toBeLessThan(300);
    await put('/v1/resource-kinds/gpu', { displayName: 'GPUs', default: 0 });
    await put('/v1/organizations/acme', {});
    await put('/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 1_000_000 }] });
    await put('/v1/organizations/acme/projects/web', {});
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await ledger?.close();
    await standby?.destroy();
    await primary?.destroy();
  });

  it('loses no acknowledged create, answers no 500, and finds the promoted standby by itself', async () => {
    const answers = new Map<string, number>();
    let phase: 'primary' | 'down' | 'promoted' = 'primary';
    const afterPromotion: number[] = [];
    let stop = false;
    let next = 0;
    const client = async () => {
      while (!stop) {
        const id = `vm-${(next += 1)}`;
        const { status } = await create(id);
        answers.set(id, status);
        if (phase === 'promoted') afterPromotion.push(status);
        if (status === 503) await sleep(20);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await sleep(600);
    phase = 'down';
    await primary.stop();
    await sleep(300);
    await standby.promote();
    phase = 'promoted';
    // Load until the new primary has taken creates (at most 20 s).
    for (let waited = 0; afterPromotion.filter((status) => status === 201).length < 20 && waited < 20_000; waited += 50) await sleep(50);
    stop = true;
    await Promise.all(clients);

    const statuses = [...answers.values()];
    // The primary died under load: some creates were in flight or found no writable host.
    expect(statuses.filter((status) => status === 503).length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 201 && status !== 503)).toEqual([]);
    expect(statuses.filter((status) => status === 201).length).toBeGreaterThan(20);
    expect(afterPromotion.filter((status) => status === 201).length).toBeGreaterThanOrEqual(20);

    // Every acknowledged create is on the new primary.
    const { rows } = await standby.sql(`SELECT resource_id FROM allocations WHERE deleted_at IS NULL`);
    const stored = new Set(rows.map((row: { resource_id: string }) => row.resource_id));
    const acknowledged = [...answers].filter(([, status]) => status === 201).map(([id]) => id);
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);

    // Each 503, retried with its key, ends in exactly one allocation (replayed if it had landed).
    for (const [id, status] of answers) {
      if (status !== 503) continue;
      const retried = await create(id);
      expect(retried.status, JSON.stringify(retried.body)).toBe(201);
    }
    const { rows: counts } = await standby.sql(
      `SELECT resource_id, count(*)::int AS n FROM allocations WHERE deleted_at IS NULL GROUP BY resource_id HAVING count(*) <> 1`,
    );
    expect(counts).toEqual([]);
    const { rows: total } = await standby.sql(`SELECT count(*)::int AS n FROM allocations WHERE deleted_at IS NULL`);
    expect(total[0].n).toBe(answers.size);
    expect(await ledger.verifyCounters()).toEqual([]);
  }, 90_000);
});
