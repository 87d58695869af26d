// Goal: what the client tests share: a real allot server listening on 127.0.0.1 (the client
// speaks fetch, so it gets a socket, not `inject`), clients of it, and a fault-injecting HTTP
// proxy in front of it that can drop a connection or answer 503/429 before or after the server
// has answered, recording every request it sees with its Idempotency-Key.
// Method: `buildApp` on a fresh test database of the engine, `listen` on an ephemeral port; the
// proxy is a node:http server that forwards with fetch and then does what its next fault says.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { parseAllowList } from '../../src/webhooks/address.js';
import { createClient, type AllotClient, type ClientOptions } from '../../src/client/index.js';
import type { Engine } from '../../src/store/store.js';
import { openTestLedger, type TestLedger } from '../support/engines.js';

export const adminToken = 'client-test-admin-token';

export interface ClientServer {
  url: string;
  app: FastifyInstance;
  test: TestLedger;
  /** A client of this server (the admin's, unless `token` says otherwise); fast retries. */
  client(options?: Partial<ClientOptions>): AllotClient;
  close(): Promise<void>;
}

/** Fast retries for tests: the policy is the client's, only the waits are short. */
export const quickRetries = { retries: 3, baseDelayMs: 5, maxDelayMs: 50 };

export async function startClientServer(engine: Engine): Promise<ClientServer> {
  const test = await openTestLedger(engine);
  // Loopback webhook targets allowed: the client's tests subscribe a local URL.
  const app = await buildApp({ ledger: test.ledger, adminToken, webhookAllow: parseAllowList('127.0.0.0/8') });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    app,
    test,
    client: (options = {}) => createClient({ baseUrl: url, token: adminToken, retries: quickRetries, ...options }),
    close: async () => {
      await app.close();
      await test.close();
    },
  };
}

/**
 * What the proxy does with a request:
 * - `pass`: forward it, return the answer;
 * - `drop-after`: forward it, read the whole answer, then close the client's connection unanswered;
 * - `status-after`: forward it, read the answer, and answer `status` instead;
 * - `status`: answer `status` without forwarding.
 */
export type Fault =
  | { kind: 'pass' }
  | { kind: 'drop-after' }
  | { kind: 'status-after' | 'status'; status: number; headers?: Record<string, string>; body?: unknown };

export interface Seen {
  method: string;
  url: string;
  idempotencyKey: string | undefined;
  /** When the proxy received it (performance.now()). */
  atMs: number;
  /** Whether the server got it. */
  forwarded: boolean;
  /** The status the client got (undefined: the connection was dropped). */
  status?: number;
}

export interface FaultyProxy {
  url: string;
  /** Faults for the next requests, in order; then `pass`. */
  faults: Fault[];
  seen: Seen[];
  close(): Promise<void>;
}

const hopHeaders = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function answer(response: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string) {
  response.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  response.end(body);
}

/** A problem document as allot writes it, for the proxy's own answers. */
export function problemBody(status: number, code: string, detail = code) {
  return { type: `/problems/${code}`, title: code, status, detail };
}

export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const faults: Fault[] = [];
  const seen: Seen[] = [];
  const server: Server = createServer(async (request, response) => {
    const fault = faults.shift() ?? { kind: 'pass' };
    const key = request.headers['idempotency-key'];
    const record: Seen = {
      method: request.method ?? 'GET',
      url: request.url ?? '/',
      idempotencyKey: typeof key === 'string' ? key : undefined,
      atMs: performance.now(),
      forwarded: fault.kind !== 'status',
    };
    seen.push(record);
    const body = await readBody(request);
    if (fault.kind === 'status') {
      record.status = fault.status;
      return answer(response, fault.status, { 'content-type': 'application/problem+json', ...fault.headers }, JSON.stringify(fault.body ?? problemBody(fault.status, 'service-unavailable')));
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (!hopHeaders.has(name) && typeof value === 'string') headers[name] = value;
    }
    const upstream = await fetch(`${target}${record.url}`, {
      method: record.method,
      headers,
      ...(body.length > 0 ? { body: new Uint8Array(body) } : {}),
    });
    const text = Buffer.from(await upstream.arrayBuffer());
    if (fault.kind === 'drop-after') {
      request.socket.destroy();
      return;
    }
    if (fault.kind === 'status-after') {
      record.status = fault.status;
      return answer(response, fault.status, { 'content-type': 'application/problem+json', ...fault.headers }, JSON.stringify(fault.body ?? problemBody(fault.status, 'service-unavailable')));
    }
    record.status = upstream.status;
    const out: Record<string, string> = {};
    upstream.headers.forEach((value, name) => {
      if (!hopHeaders.has(name) && name !== 'content-encoding') out[name] = value;
    });
    answer(response, upstream.status, out, text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    faults,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
