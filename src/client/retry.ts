/**
 * The client's transport: a `fetch` that makes every request safe to repeat and repeats it when
 * that helps. Every mutating request (POST, PUT, DELETE, PATCH) carries an `Idempotency-Key` (a
 * random UUID unless the caller set one), the same on each of its attempts, so the server
 * applies it at most once and answers a repeat with the first answer (`Idempotent-Replayed`).
 * Repeated, with exponential backoff and jitter, a bounded number of times:
 * - a network error (no answer: the connection failed or dropped), when the request is safe to
 *   send again: a read, a PUT or DELETE, or a POST the document says the server keys;
 * - 503 and 429 (the server did not act), after `Retry-After` when it says (seconds or an HTTP
 *   date), else after the backoff;
 * - 409 `request-in-progress`: the first attempt with this key still runs; the same key again
 *   gets its answer once it is done.
 * Nothing else is repeated: a 4xx is an answer (a denial, a malformed request, a stale ETag).
 */
import type { Clock } from '../domain/clock.js';
import { routes } from './routes.js';

export type Fetch = (request: Request) => Promise<Response>;

export interface RetryOptions {
  /** Retries after the first attempt (default 3; 0: never repeat a request). */
  retries?: number;
  /** The first retry's backoff (default 100 ms); each further retry doubles it, with jitter. */
  baseDelayMs?: number;
  /** The longest backoff (default 5 s). */
  maxDelayMs?: number;
  /** A `Retry-After` longer than this (default 60 s) is not waited for: its answer is returned. */
  maxRetryAfterMs?: number;
}

export interface Transport {
  fetch: Fetch;
  clock: Clock;
  /** In [0, 1): the jitter. */
  random: () => number;
}

const defaults: Required<RetryOptions> = { retries: 3, baseDelayMs: 100, maxDelayMs: 5000, maxRetryAfterMs: 60_000 };

const mutating = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

/** POST operations the server runs once per Idempotency-Key, as patterns on a URL's path. */
const keyedPosts = Object.entries(routes)
  .filter(([name, route]) => name.startsWith('POST ') && route.idempotencyKey)
  .map(([name]) => {
    const template = name.slice('POST '.length);
    const pattern = template
      .split(/\{[^}]+\}/)
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]+');
    // Anything before /v1 is the base URL's own path.
    return new RegExp(`^(?:/.*)?${pattern}$`);
  });

/** May this request be sent again after a network error, without a risk of applying it twice? */
export function replaySafe(method: string, url: string): boolean {
  if (method !== 'POST' && method !== 'PATCH') return true;
  const path = new URL(url).pathname;
  return method === 'POST' && keyedPosts.some((pattern) => pattern.test(path));
}

/** A `Retry-After` value in milliseconds from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** The wait before retry `retry` (1 for the first): exponential, with the upper half jittered. */
export function backoffMs(retry: number, options: Required<RetryOptions>, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (retry - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

function sleep(ms: number, signal: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Is this answer a 409 request-in-progress (the first attempt with the key still runs)? */
async function inProgress(response: Response): Promise<boolean> {
  if (response.status !== 409) return false;
  try {
    const body = (await response.clone().json()) as { type?: unknown };
    return typeof body.type === 'string' && body.type.endsWith('/request-in-progress');
  } catch {
    return false;
  }
}

/**
 * How long to wait before repeating the request that got `response`; undefined: return it.
 * 503 and 429 honour `Retry-After` (at least that long), unless it asks for longer than
 * `maxRetryAfterMs`.
 */
async function delayAfter(
  response: Response,
  retry: number,
  options: Required<RetryOptions>,
  transport: Transport,
): Promise<number | undefined> {
  const backoff = backoffMs(retry, options, transport.random);
  if (await inProgress(response)) return backoff;
  if (response.status !== 503 && response.status !== 429) return undefined;
  const asked = retryAfterMs(response.headers.get('retry-after'), transport.clock.nowMs());
  if (asked === undefined) return backoff;
  if (asked > options.maxRetryAfterMs) return undefined;
  return asked + transport.random() * options.baseDelayMs;
}

/** A `fetch` that adds idempotency keys to mutating requests and retries as described above. */
export function retryingFetch(transport: Transport, retryOptions: RetryOptions = {}): Fetch {
  // An option left undefined keeps its default (never an unbounded `retries`).
  const given = Object.fromEntries(Object.entries(retryOptions).filter(([, value]) => typeof value === 'number' && value >= 0));
  const options: Required<RetryOptions> = { ...defaults, ...given };
  return async (input) => {
    const method = input.method.toUpperCase();
    const headers = new Headers(input.headers);
    if (mutating.has(method) && !headers.has('idempotency-key')) headers.set('idempotency-key', crypto.randomUUID());
    // Read once, sent on every attempt.
    const body = input.body === null ? undefined : await input.arrayBuffer();
    const attempt = () =>
      new Request(input.url, {
        method,
        headers,
        body,
        signal: input.signal,
        redirect: input.redirect,
        credentials: input.credentials,
        mode: input.mode,
        cache: input.cache,
      });
    const canReplay = replaySafe(method, input.url);
    for (let retry = 1; ; retry += 1) {
      const last = retry > options.retries;
      let response: Response;
      try {
        response = await transport.fetch(attempt());
      } catch (error) {
        if (input.signal?.aborted || last || !canReplay) throw error;
        await sleep(backoffMs(retry, options, transport.random), input.signal);
        continue;
      }
      const delay = last ? undefined : await delayAfter(response, retry, options, transport);
      if (delay === undefined) return response;
      await response.body?.cancel().catch(() => undefined);
      await sleep(delay, input.signal);
    }
  };
}
