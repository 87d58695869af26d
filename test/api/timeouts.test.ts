// Goal: no client holds the server's connections by being slow: a request whose headers or
// body trickle in is cut off at its bound, an idle kept-alive connection is closed, and while
// many slow clients wait to be cut off, others are served at once. And a path that climbs out
// of a file server's root is a 404, not a 400 about a body.
// Method: per engine, a real listening app with short bounds (headers 500 ms, whole request
// 1 s, idle 500 ms); raw TCP clients (node:net) that send a byte at a time, and measure when
// the server closes them.
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken } from './harness.js';

const bounds = { headersMs: 500, requestMs: 1000, idleMs: 500 };
/**
 * Node checks header and request timeouts once a second; what is asserted is "seconds, not
 * minutes", with room for a busy machine.
 */
const slackMs = 3000;

interface Slow {
  /** Resolves with the ms from connect to the server closing the connection, and what it said. */
  closed: Promise<{ afterMs: number; answer: string }>;
  socket: net.Socket;
}

/** Connects, sends `head` at once, then one byte of `trickle` every `everyMs` until closed. */
function slowClient(port: number, head: string, trickle: string, everyMs: number): Slow {
  const startedAt = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  let answer = '';
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(head);
    let i = 0;
    timer = setInterval(() => {
      if (!socket.destroyed && socket.writable) socket.write(trickle[i++ % trickle.length]!);
    }, everyMs);
  });
  socket.on('data', (chunk) => (answer += chunk.toString()));
  const closed = new Promise<{ afterMs: number; answer: string }>((resolve) => {
    const done = () => {
      clearInterval(timer);
      resolve({ afterMs: Date.now() - startedAt, answer });
    };
    socket.on('close', done);
    socket.on('error', () => undefined);
  });
  return { closed, socket };
}

/** One raw request; resolves with the status line and the body. */
function rawRequest(port: number, request: string): Promise<{ status: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('end', () => resolve({ status: text.split('\r\n')[0]!, body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
    socket.on('error', reject);
  });
}

describe.each(engines)('slow and idle clients on %s', (engine) => {
  let test: TestLedger;
  let app: FastifyInstance;
  let port: number;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    await test.ledger.putOrganization('acme', {});
    app = await buildApp({ ledger: test.ledger, adminToken, timeouts: bounds });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await app?.close();
    await test?.close();
  });

  it('cuts off headers that trickle in, a body that trickles in, and an idle connection', async () => {
    const slowHeaders = slowClient(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 'aaaa', 100);
    const slowBody = slowClient(
      port,
      `PUT /v1/organizations/acme HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${adminToken}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"displayName":"',
      'a',
      200,
    );
    // A complete request, then nothing: the connection may idle for the idle bound only.
    const idle = slowClient(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', '', 60_000);
    const [headers, body, quiet] = await Promise.all([slowHeaders.closed, slowBody.closed, idle.closed]);
    expect(headers.afterMs).toBeLessThan(bounds.headersMs + slackMs);
    expect(body.afterMs).toBeGreaterThanOrEqual(bounds.requestMs - 100);
    expect(body.afterMs).toBeLessThan(bounds.requestMs + slackMs);
    expect(quiet.answer).toMatch(/^HTTP\/1.1 200/);
    expect(quiet.afterMs).toBeLessThan(bounds.idleMs + slackMs);
    // The trickled body changed nothing.
    expect((await test.ledger.getOrganization('acme')).displayName).toBe('acme');
  });

  it('serves others at once while a hundred slow clients wait to be cut off', async () => {
    const slow = Array.from({ length: 100 }, () =>
      slowClient(
        port,
        `POST /v1/organizations/acme/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${adminToken}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
        ' ',
        200,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const startedAt = Date.now();
    const served = await fetch(`http://127.0.0.1:${port}/v1/organizations/acme`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(served.status).toBe(200);
    expect(Date.now() - startedAt).toBeLessThan(slackMs);
    const closed = await Promise.all(slow.map((client) => client.closed));
    expect(Math.max(...closed.map((c) => c.afterMs))).toBeLessThan(bounds.requestMs + slackMs);
  });

  it.each([
    '/docs/static/../../package.json',
    '/docs/static/%2e%2e/%2e%2e/package.json',
    '/assets/../../package.json',
  ])('answers the path %s with 404, not a 400 about a body', async (path) => {
    const answer = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toMatch(/^HTTP\/1.1 404/);
    expect(JSON.parse(answer.body)).toMatchObject({ type: '/problems/not-found', status: 404 });
    expect(answer.body).not.toContain('"name": "allot"');
  });
});
