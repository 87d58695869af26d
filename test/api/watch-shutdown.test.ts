// Goal: a server with open watch streams (every open dashboard holds one) still shuts down
// promptly: `app.close()`, which SIGTERM calls, ends the streams instead of waiting for them,
// and each client sees its stream end.
// Method: per engine, a real listening app; two clients open …/watch with fetch and wait for
// the headers; then `app.close()` races a 3-second timer (a connection left idle in keep-alive
// would hold it for 5), and each stream's reader must report its end. Then a watch caught
// mid-lookup when closing starts (the organization lookup held back 300 ms): it must be
// refused, not left streaming, and the close must not wait on it.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken } from './harness.js';

/** 'closed', or what it was still doing after 3 s (an idle keep-alive connection holds a close for 5). */
async function closeWithin3s(app: FastifyInstance): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    app.close().then(() => 'closed'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting after 3 s'), 3_000))),
  ]);
  clearTimeout(timer);
  return outcome;
}

describe.each(engines)('shutdown with open watch streams on %s', (engine) => {
  let test: TestLedger;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    await test.ledger.putOrganization('acme', {});
  });
  afterAll(async () => test.close());

  it('closes at once, ending every stream', async () => {
    const app = await buildApp({ ledger: test.ledger, adminToken });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const readers = await Promise.all(
      [0, 1].map(async () => {
        const response = await fetch(`${address}/v1/organizations/acme/watch`, { headers: { authorization: `Bearer ${adminToken}` } });
        expect(response.status).toBe(200);
        return response.body!.getReader();
      }),
    );
    expect(await closeWithin3s(app)).toBe('closed');
    for (const reader of readers) {
      let done = false;
      while (!done) done = (await reader.read().catch(() => ({ done: true }))).done;
      expect(done).toBe(true);
    }
  });

  it('refuses a watch that was still being looked up when closing began', async () => {
    const app = await buildApp({ ledger: test.ledger, adminToken });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    // Holds the request between its authentication and its stream, where closing can begin.
    const lookup = test.ledger.getOrganization.bind(test.ledger);
    let entered!: () => void;
    const lookingUp = new Promise<void>((resolve) => (entered = resolve));
    test.ledger.getOrganization = async (id: string) => {
      entered();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return lookup(id);
    };
    try {
      const watch = fetch(`${address}/v1/organizations/acme/watch`, { headers: { authorization: `Bearer ${adminToken}` } });
      // Closing begins once the request is in its lookup (on a busy machine, a fixed wait could
      // begin it before the request arrived, and Fastify's own 503 would answer).
      await lookingUp;
      expect(await closeWithin3s(app)).toBe('closed');
      const response = await watch;
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ type: '/problems/service-unavailable' });
    } finally {
      test.ledger.getOrganization = lookup;
    }
  });
});
