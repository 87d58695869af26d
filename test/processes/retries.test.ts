// Goal: callers that crash, retry and race get one outcome per idempotency key, across server
// processes, and the journal stream delivers every entry exactly once across a reconnect.
// Method: real `allot serve` processes on one database. (1) Send a create and drop the
// connection before reading the answer, then resend with the same key until it answers: one
// allocation exists, and the answer is the stored one. (2) 100 concurrent requests with one
// key, spread over two processes: one allocation, every answer the same. (3) Read the watch
// stream, disconnect midway, reconnect with Last-Event-ID, and compare with the journal.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, testAdminToken, type ServerProcess } from '../support/server.js';

const allocations = '/v1/organizations/acme/projects/web/allocations';

async function post(url: string, path: string, body: unknown, key: string) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${testAdminToken}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text(), replayed: response.headers.get('idempotent-replayed') };
}

/** Sends a request and closes the socket as soon as the request is written: the answer is lost. */
function sendAndDrop(url: string, path: string, body: unknown, key: string): Promise<void> {
  const target = new URL(`${url}${path}`);
  return new Promise((resolve) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      headers: {
        authorization: `Bearer ${testAdminToken}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
    });
    req.on('error', () => resolve());
    req.end(JSON.stringify(body), () => {
      req.destroy();
      resolve();
    });
  });
}

/** Reads server-sent events until `count` journal events have arrived, then disconnects. */
async function readEvents(url: string, path: string, count: number, lastEventId?: number) {
  const controller = new AbortController();
  const response = await fetch(`${url}${path}`, {
    headers: {
      authorization: `Bearer ${testAdminToken}`,
      ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }),
    },
    signal: controller.signal,
  });
  expect(response.headers.get('content-type')).toBe('text/event-stream');
  const events: { id: number; data: any }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body!.getReader();
  // A stream that stops short fails with what it did deliver, not as a bare test timeout.
  const deadline = setTimeout(() => controller.abort(), 30_000);
  while (events.length < count) {
    const { value, done } = await reader.read().catch((error: unknown) => {
      throw new Error(`the stream at ${url}${path} gave ${events.length} of ${count} events (${events.map((e) => e.id).join(', ')}) in 30 s: ${String(error)}`);
    });
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (\d+)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      if (id && data) events.push({ id: Number(id[1]), data: JSON.parse(data[1]!) });
    }
  }
  clearTimeout(deadline);
  controller.abort();
  return events;
}

describe.each(engines)('retries and streams against server processes on %s', (engine) => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];
  let a = '';
  let b = '';

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    servers = [await startServer(database.url)];
    servers.push(await startServer(database.url));
    [a, b] = servers.map((server) => server.url) as [string, string];
    await call(a, 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: 1000 });
    await call(a, 'PUT', '/v1/organizations/acme', {});
    await call(a, 'PUT', '/v1/organizations/acme/projects/web', {});
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await database.drop();
  });

  it('a dropped response, resent with its key, yields one allocation and one answer', async () => {
    const body = { resource: { kind: 'server', id: 'dropped-1' }, allocations: [{ kind: 'gpus', committed: 3 }] };
    await sendAndDrop(a, allocations, body, 'drop-1');
    let answer = await post(b, allocations, body, 'drop-1');
    for (let attempt = 0; answer.status === 409 && attempt < 100; attempt += 1) {
      // The first request may still be running: the retry waits for it or says so.
      expect(JSON.parse(answer.body).type).toBe('/problems/request-in-progress');
      answer = await post(b, allocations, body, 'drop-1');
    }
    expect(answer.status).toBe(201);
    const again = await post(a, allocations, body, 'drop-1');
    expect(again).toEqual({ status: 201, body: answer.body, replayed: 'true' });
    const list = await call(a, 'GET', `${allocations}?resourceId=dropped-1`);
    expect(list.json.items).toHaveLength(1);
    expect(list.json.items[0].id).toBe(JSON.parse(answer.body).id);
  });

  it('100 concurrent requests with one key, over two processes, create one allocation', async () => {
    const body = { resource: { kind: 'server', id: 'same-key' }, allocations: [{ kind: 'gpus', committed: 1 }] };
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => post(i % 2 === 0 ? a : b, allocations, body, 'same-key-1')),
    );
    const created = answers.filter((answer) => answer.status === 201);
    expect(created.length).toBe(100);
    expect(new Set(created.map((answer) => answer.body)).size).toBe(1);
    expect(created.filter((answer) => answer.replayed === null)).toHaveLength(1);
    const list = await call(a, 'GET', `${allocations}?resourceId=same-key`);
    expect(list.json.items).toHaveLength(1);
  });

  it('the watch stream delivers every journal entry exactly once across a reconnect', async () => {
    const journal = await call(a, 'GET', '/v1/organizations/acme/journal?after=0&limit=1000');
    const before = journal.json.lastRevision as number;
    const changes = async (from: number, count: number) => {
      for (let i = from; i < from + count; i += 1) {
        const response = await call(i % 2 === 0 ? a : b, 'POST', allocations, {
          resource: { kind: 'server', id: `watched-${i}` },
          allocations: [{ kind: 'gpus', committed: 1 }],
        });
        expect(response.status).toBe(201);
      }
    };
    // Five entries exist when the stream opens, five arrive while it is open; it disconnects
    // after seven, and five more happen while no one listens.
    await changes(0, 5);
    const firstHalf = readEvents(a, `/v1/organizations/acme/watch?after=${before}`, 7);
    await changes(5, 5);
    const seen = await firstHalf;
    await changes(10, 5);
    const rest = await readEvents(b, '/v1/organizations/acme/watch', 8, seen.at(-1)!.id);
    const revisions = [...seen, ...rest].map((event) => event.id);
    expect(revisions).toEqual(Array.from({ length: 15 }, (_, i) => before + 1 + i));
    const all = await call(a, 'GET', `/v1/organizations/acme/journal?after=${before}&limit=1000`);
    expect([...seen, ...rest].map((event) => event.data)).toEqual(all.json.items);
  });
});
