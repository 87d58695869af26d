// Goal: with a read replica (`--db-read`), the reads that tolerate lag — listings, journal
// pages, history — are served by the replica, and everything else by the primary: decisions,
// quota reads, single resources; a process's reads of an organization it has just changed, and
// any request with `Cache-Control: no-cache`, stay on the primary (read-your-writes); a replica
// that is down is skipped for the primary, not answered 503.
// Method: two clusters of the test's own, a primary and a streaming standby that applies WAL
// only after a minute (recovery_min_apply_delay), so it lags for certain. Two ledgers and apps
// — two server processes, as far as the replica rule knows — on the primary with the standby
// for reads: one makes a change, the other reads it back each way.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { engines } from '../support/engines.js';
import { waitFor } from '../support/wait.js';

const adminToken = 'replica-admin-token-for-the-tests';

describe.skipIf(!engines.includes('postgres'))('reads from a replica (a cluster of its own)', () => {
  let primary: Cluster;
  let replica: Cluster;
  const ledgers: Ledger[] = [];
  let writer: FastifyInstance;
  let reader: FastifyInstance;

  const get = async (app: FastifyInstance, url: string, headers: Record<string, string> = {}) => {
    const response = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${adminToken}`, ...headers } });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const listed = async (app: FastifyInstance, headers?: Record<string, string>) =>
    (await get(app, '/v1/organizations/acme/allocations', headers)).items.map((item: { resource: { id: string } }) => item.resource.id);

  beforeAll(async () => {
    primary = await startCluster();
    replica = await startCluster(primary);
    for (let i = 0; i < 2; i += 1) {
      const ledger = await openLedger({ db: primary.url, dbRead: replica.url });
      ledgers.push(ledger);
    }
    const apps = await Promise.all(ledgers.map((ledger) => buildApp({ ledger, adminToken, logger: { level: 'error' } })));
    writer = apps[0]!;
    reader = apps[1]!;
    const put = async (url: string, payload: object) =>
      expect((await writer.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${adminToken}` }, payload })).statusCode).toBeLessThan(300);
    await put('/v1/resource-kinds/gpu', { displayName: 'GPUs', default: 0 });
    await put('/v1/organizations/acme', {});
    await put('/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 10 }] });
    await put('/v1/organizations/acme/projects/web', {});
    // The replica has all of that, then falls a minute behind.
    await waitFor('the replica to catch up', async () =>
      (await replica.sql(`SELECT 1 FROM projects WHERE id = 'web'`).catch(() => ({ rows: [] }))).rows.length > 0 ? true : undefined, 10_000, 25);
    await replica.set('recovery_min_apply_delay', '60s');
  }, 120_000);

  afterAll(async () => {
    await writer?.close();
    await reader?.close();
    for (const ledger of ledgers) await ledger.close();
    await replica?.destroy();
    await primary?.destroy();
  });

  it('serves lagging reads from the replica and the rest from the primary', async () => {
    const made = await writer.inject({
      method: 'POST',
      url: '/v1/organizations/acme/projects/web/allocations',
      headers: { authorization: `Bearer ${adminToken}` },
      payload: { resource: { kind: 'vm', id: 'vm-new' }, allocations: [{ kind: 'gpu', committed: 3 }] },
    });
    expect(made.statusCode).toBe(201);
    const { id } = made.json();

    // The other process's listing and journal page come from the replica, a minute behind.
    expect(await listed(reader)).toEqual([]);
    const page = await get(reader, '/v1/organizations/acme/journal?after=0');
    expect(page.items.map((entry: { action: string }) => entry.action)).not.toContain('allocation.created');
    // Asked for fresh data, the same reads come from the primary.
    expect(await listed(reader, { 'cache-control': 'no-cache' })).toEqual(['vm-new']);
    const fresh = await get(reader, '/v1/organizations/acme/journal?after=0', { 'cache-control': 'no-cache' });
    expect(fresh.items.map((entry: { action: string }) => entry.action)).toContain('allocation.created');
    // The process that made the change reads it back at once.
    expect(await listed(writer)).toEqual(['vm-new']);
    // A single resource and the quotas are never lagging reads.
    expect((await get(reader, `/v1/organizations/acme/projects/web/allocations/${id}`)).id).toBe(id);
    const quotas = await get(reader, '/v1/organizations/acme/quotas');
    expect(quotas.quotas.find((quota: { kind: string }) => quota.kind === 'gpu').committed).toBe(3);
    // Counted where they were answered (allot_replica_reads_total).
    expect(ledgers[1]!.replicaReads()).toEqual({ replica: 2, primary: 2, fallback: 0 });
    expect(ledgers[0]!.replicaReads()).toMatchObject({ primary: 1, replica: 0 });
  });

  it('lists what this process just created, and answers for an organization the replica has not seen', async () => {
    const put = async (url: string) =>
      expect((await writer.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${adminToken}` }, payload: {} })).statusCode).toBeLessThan(300);
    await put('/v1/organizations/acme/projects/api');
    await put('/v1/organizations/fresh');
    const projects = (await get(writer, '/v1/organizations/acme/projects')).items.map((item: { id: string }) => item.id);
    expect(projects).toContain('api');
    const organizations = (await get(writer, '/v1/organizations')).items.map((item: { id: string }) => item.id);
    expect(organizations).toContain('fresh');
    // The other process: the replica has no such organization yet (a 404 there), the primary has.
    const before = ledgers[1]!.replicaReads()!.fallback;
    expect((await get(reader, '/v1/organizations/fresh/journal?after=0')).items).toEqual([]);
    expect(ledgers[1]!.replicaReads()!.fallback).toBe(before + 1);
  });

  it('skips a replica that is down for the primary', async () => {
    await replica.stop();
    expect(await listed(reader)).toEqual(['vm-new']);
    expect(ledgers[1]!.replicaReads()?.fallback).toBe(2);
  });
});
