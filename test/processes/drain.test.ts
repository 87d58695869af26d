// Goal: on SIGTERM, `allot serve --drain-ms` first answers /readyz 503 — so a load balancer
// stops sending — while it still serves every request that reaches it, then closes and exits 0.
// Method: a real `allot serve` process per engine with --drain-ms 3000; SIGTERM; poll /readyz
// until 503, check /healthz and an API read still answer, then wait for the exit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, type ServerProcess } from '../support/server.js';

describe.each(engines)('draining on SIGTERM on %s', (engine) => {
  let database: TestDatabase;
  let server: ServerProcess;
  beforeAll(async () => {
    database = await createTestDatabase(engine);
    server = await startServer(database.url, {}, ['--drain-ms', '3000']);
  });
  afterAll(async () => {
    await server.stop('SIGKILL');
    await database.drop();
  });

  it('answers /readyz 503 before it closes, serving meanwhile, then exits 0', async () => {
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
    server.child.kill('SIGTERM');
    let readyz = 200;
    for (let i = 0; i < 100 && readyz === 200; i += 1) {
      readyz = (await fetch(`${server.url}/readyz`)).status;
      if (readyz === 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(readyz).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await call(server.url, 'GET', '/v1/resource-kinds')).status).toBe(200);
    expect(await exited).toBe(0);
  });
});
