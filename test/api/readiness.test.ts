// Goal: /healthz says the process is alive and /readyz whether it should get traffic: ready
// when the database answers and the schema has every migration, 503 (problem, Retry-After)
// when the schema is behind, when the database is gone, and from the moment the app drains or
// closes — while /healthz stays 200 and other routes still answer during the drain.
// Method: per engine, an app over a test ledger through `inject`; a second ledger opened
// without migrating on a fresh database; `drain(app)` then `app.close()`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, drain } from '../../src/api/app.js';
import { openLedger } from '../../src/ledger/ledger.js';
import { createTestDatabase, engines, openTestLedger, type TestLedger } from '../support/engines.js';

const adminToken = 'a-long-enough-admin-token-for-readiness';

describe.each(engines)('health and readiness on %s', (engine) => {
  let test: TestLedger;
  beforeAll(async () => {
    test = await openTestLedger(engine);
  });
  afterAll(async () => {
    await test.close();
  });

  it('is ready with a current schema; draining answers 503 on /readyz only, closing too', async () => {
    const app = await buildApp({ ledger: test.ledger, adminToken });
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    drain(app);
    const draining = await app.inject({ url: '/readyz' });
    expect(draining.statusCode).toBe(503);
    expect(draining.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(draining.headers['retry-after']).toBe('1');
    expect(draining.json()).toMatchObject({ type: '/problems/service-unavailable', detail: 'the server is shutting down' });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const served = await app.inject({ url: '/v1/resource-kinds', headers: { authorization: `Bearer ${adminToken}` } });
    expect(served.statusCode).toBe(200);
    await app.close();
  });

  it('is not ready while migrations are pending, and says which', async () => {
    const database = await createTestDatabase(engine);
    const ledger = await openLedger({ db: database.url, migrate: false });
    const app = await buildApp({ ledger, adminToken });
    try {
      const response = await app.inject({ url: '/readyz' });
      expect(response.statusCode).toBe(503);
      expect(response.json().detail).toMatch(/^migrations not applied: 1, 2, .* \(run allot migrate\)$/);
      expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
      await ledger.close();
      await database.drop();
    }
  });

  it('is not ready when the database does not answer', async () => {
    const database = await createTestDatabase(engine);
    const ledger = await openLedger({ db: database.url });
    const app = await buildApp({ ledger, adminToken });
    await ledger.close();
    try {
      const response = await app.inject({ url: '/readyz' });
      expect(response.statusCode).toBe(503);
      expect(response.json().detail).toBe('the database does not answer');
    } finally {
      await app.close();
      await database.drop();
    }
  });
});
