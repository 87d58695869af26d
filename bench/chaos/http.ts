/**
 * One HTTP request to one server, with nothing hidden: a connection refused or reset, a
 * response cut off, or a timeout rejects with `ConnectionError` — the caller cannot know
 * whether the server acted on the request. Keep-alive connections, so the load is cheap.
 */
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

export interface HttpAnswer {
  status: number;
  body: unknown;
  /** `Idempotent-Replayed: true`: the stored answer of an earlier request with the key. */
  replayed: boolean;
}

export class ConnectionError extends Error {}

export interface HttpCallOptions {
  token: string;
  body?: unknown;
  idempotencyKey?: string;
  timeoutMs: number;
}

export function httpRequest(
  baseUrl: string,
  method: string,
  path: string,
  options: HttpCallOptions,
): Promise<HttpAnswer> {
  const target = new URL(path, baseUrl);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new ConnectionError(error instanceof Error ? error.message : String(error)));
    };
    const request = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method,
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...(options.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', fail);
        response.on('aborted', () => fail(new Error('response aborted')));
        response.on('end', () => {
          if (settled) return;
          if (!response.complete) return fail(new Error('response cut off'));
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            return fail(new Error(`unreadable body: ${text.slice(0, 200)}`));
          }
          settled = true;
          clearTimeout(timer);
          resolve({
            status: response.statusCode ?? 0,
            body,
            replayed: response.headers['idempotent-replayed'] === 'true',
          });
        });
      },
    );
    const timer = setTimeout(() => {
      request.destroy(new Error(`no answer within ${options.timeoutMs} ms`));
    }, Math.max(1, options.timeoutMs));
    request.on('error', fail);
    request.end(payload);
  });
}

/** The problem type of an error answer (`/problems/quota-exceeded`…), if it has one. */
export function problemType(body: unknown): string | undefined {
  const type = (body as { type?: unknown } | null | undefined)?.type;
  return typeof type === 'string' ? type : undefined;
}

/** Closes idle keep-alive connections, so the process can exit. */
export function closeConnections(): void {
  agent.destroy();
}
