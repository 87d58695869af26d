// Goal: a server SIGKILLed in the middle of delivering webhooks loses nothing: the next server
// on the same books delivers every journal entry from where the dead one last recorded, so
// the receiver, deduplicating by webhook-id, has each entry once, in revision order; every
// delivery it took is signed with the subscription's secret; and the subscription ends active.
// Method: real `allot serve` processes on each engine with a short delivery timeout (so the
// dead process's lease runs out within seconds), a real receiver that is slow to answer (so
// deliveries are in flight when the kill comes), allocations made through the HTTP API.
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, type ServerProcess } from '../support/server.js';
import { waitFor } from '../support/wait.js';
import { Receiver } from '../webhooks/receiver.js';

const serveArgs = ['--webhook-allow', '127.0.0.0/8', '--webhook-timeout', '1000', '--webhook-backoff', '50'];
const acme = '/v1/organizations/acme';

describe.each(engines)('webhooks across a SIGKILL on %s', (engine) => {
  let database: TestDatabase;
  const servers: ServerProcess[] = [];
  const receiver = new Receiver();

  afterEach(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    await receiver.down();
    await database?.drop();
  });

  it('delivers every entry once after deduplication, in order, from where the dead server stopped', async () => {
    database = await createTestDatabase(engine);
    await receiver.up();
    receiver.delayMs = 40;
    const first = await startServer(database.url, {}, serveArgs);
    servers.push(first);
    const put = async (path: string, body: unknown) => expect((await call(first.url, 'PUT', path, body)).status).toBeLessThan(300);
    await put('/v1/resource-kinds/gpus', { displayName: 'GPUs' });
    await put(acme, {});
    await put(`${acme}/projects/web`, {});
    await put(`${acme}/quotas`, { quotas: [{ kind: 'gpus', quantity: 1000 }] });
    const subscribed = await call(first.url, 'POST', `${acme}/subscriptions`, { url: receiver.url, journal: {} });
    expect(subscribed.status).toBe(201);
    receiver.secret = subscribed.json.secret;
    const allocate = async (server: ServerProcess, i: number) => {
      const made = await call(server.url, 'POST', `${acme}/projects/web/allocations`, { resource: { kind: 'vm', id: `vm-${i}` }, allocations: [{ kind: 'gpus', committed: 1 }] });
      expect(made.status).toBe(201);
    };
    for (let i = 0; i < 30; i += 1) await allocate(first, i);
    await waitFor('some deliveries', async () => (receiver.received.length >= 5 ? true : undefined));
    await first.stop('SIGKILL');
    const delivered = receiver.received.length;
    expect(delivered, 'the kill came mid-delivery').toBeLessThan(30);

    const second = await startServer(database.url, {}, serveArgs);
    servers.push(second);
    for (let i = 30; i < 35; i += 1) await allocate(second, i);
    const journal = await call(second.url, 'GET', `${acme}/journal?limit=1000`);
    const revisions = (journal.json.items as { revision: number; action: string }[])
      .filter((entry) => entry.revision > subscribed.json.deliveries[0].revision)
      .map((entry) => entry.revision);
    expect(revisions).toHaveLength(35);
    await waitFor('every entry', async () => (receiver.unique.length === 35 ? true : undefined), 60_000);
    expect(receiver.forged).toEqual([]);
    expect(receiver.unique.map((event) => event.data.revision)).toEqual(revisions);
    // Resends start again from a recorded revision and go on in order from there.
    const arrivals = receiver.received.map((event) => event.data.revision as number);
    for (let i = 1; i < arrivals.length; i += 1) {
      if (arrivals[i]! < arrivals[i - 1]!) expect(arrivals.slice(0, i), 'a resend repeats only what was sent before').toContain(arrivals[i]);
    }
    const state = await waitFor('the cursor at the end', async () => {
      const found = (await call(second.url, 'GET', `${acme}/subscriptions/${subscribed.json.id}`)).json;
      return found.deliveries[0].revision === revisions.at(-1) ? found : undefined;
    });
    expect(state).toMatchObject({ state: 'active', deliveries: [{ state: 'active', attempts: 0 }] });
  });
});
