// Goal: the decision is correct with several server processes on one database — no
// process-local lock can be what keeps the quota.
// Method: two `allot serve` processes on the same database (PostgreSQL, and a SQLite file,
// where the processes share SQLite's file lock); 200 concurrent POSTs, spread over both, race
// for a quota of 50. Exactly 50 get 201, the rest 409 quota-exceeded, and the recount agrees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, type ServerProcess } from '../support/server.js';

describe.each(engines)('two server processes on %s', (engine) => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    // Start one first so the migrations are applied once, then the second (which finds them).
    servers = [await startServer(database.url)];
    servers.push(await startServer(database.url));
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await database.drop();
  });

  it('grant exactly 50 of 200 racing allocation requests', async () => {
    const [a, b] = servers.map((server) => server.url) as [string, string];
    expect((await call(a, 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: 0 })).status).toBe(201);
    expect((await call(b, 'PUT', '/v1/organizations/acme', { displayName: 'Acme' })).status).toBe(201);
    expect((await call(a, 'PUT', '/v1/organizations/acme/projects/web', {})).status).toBe(201);
    expect(
      (await call(b, 'PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: 50 }] })).status,
    ).toBe(200);

    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        call(i % 2 === 0 ? a : b, 'POST', '/v1/organizations/acme/projects/web/allocations', {
          resource: { kind: 'server', id: `srv-${i}` },
          allocations: [{ kind: 'gpus', committed: 1 }],
        }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(50);
    expect(statuses.filter((status) => status === 409)).toHaveLength(150);
    for (const response of responses.filter((r) => r.status === 409)) {
      expect(response.json.type).toBe('/problems/quota-exceeded');
    }
    // Both processes see the same books.
    for (const url of [a, b]) {
      const quotas = await call(url, 'GET', '/v1/organizations/acme/quotas');
      expect(quotas.json.quotas[0]).toMatchObject({ kind: 'gpus', quantity: 50, used: 50, free: 0 });
    }
    const list = await call(a, 'GET', '/v1/organizations/acme/projects/web/allocations?limit=1000');
    expect(list.json.items).toHaveLength(50);

    const ledger = await openLedger({ db: database.url });
    expect(await ledger.verifyCounters()).toEqual([]);
    await ledger.close();
  });
});
