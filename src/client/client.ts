/**
 * The typed client: openapi-fetch over the paths of the served document (schema.ts), on the
 * retrying transport (retry.ts). `GET`, `PUT`, `POST` and `DELETE` take a path as the document
 * writes it and its typed parameters and body, and resolve to the typed answer with its ETag;
 * a refusal rejects with an `AllotProblem` (problem.ts). `update` reads, computes and writes
 * with `If-Match`, again on a 412; `raw` is the plain openapi-fetch client on the same transport
 * (answers `{ data, error, response }`, never throws on a refusal).
 */
import createFetchClient, { type Client, type FetchResponse, type MaybeOptionalInit } from 'openapi-fetch';
import { systemClock, type Clock } from '../domain/clock.js';
import { AllotProblem } from './problem.js';
import { retryingFetch, type Fetch, type RetryOptions } from './retry.js';
import type { paths } from './schema.js';

export interface ClientOptions {
  /** Where the server is: `http://127.0.0.1:7070` (a path prefix is kept). */
  baseUrl: string;
  /** The bearer token (an API token or a JWT), or a function asked before every request. */
  token: string | (() => string | Promise<string>);
  /** The underlying fetch (default: the global one). */
  fetch?: Fetch;
  /** Retries of network errors, 503, 429 and request-in-progress: a count, or options (0: none). */
  retries?: number | RetryOptions;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** The wall clock (for `Retry-After` dates). */
  clock?: Clock;
  /** In [0, 1): the backoff's jitter. */
  random?: () => number;
}

type Method = 'get' | 'put' | 'post' | 'delete';
type MediaType = `${string}/${string}`;

/** Paths of the document that have `method`. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P] extends { [K in M]: unknown } ? P : never;
}[keyof paths];

type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];
/** The init argument: optional when nothing in it is required (as openapi-fetch has it). */
type InitArgument<Init> = RequiredKeys<Init> extends never ? [Init?] : [Init];

type DataOf<R> = R extends { error?: never; data: infer D } ? D : never;

/** A successful answer. */
export interface Answer<Data> {
  /** The body, typed as the document declares the operation's success (undefined for 204). */
  data: Data;
  status: number;
  /** The `ETag` header: the resource's generation, for `If-Match` (undefined when none). */
  etag: string | undefined;
  /** The server answered a repeat of an idempotency key with the first answer. */
  replayed: boolean;
  response: Response;
}

type Init<P extends keyof paths, M extends Method> = MaybeOptionalInit<paths[P], M>;
type AnswerOf<P extends keyof paths, M extends Method, I> = Answer<
  DataOf<FetchResponse<paths[P][M] & Record<string | number, any>, I, MediaType>>
>;

/** A typed call: the path as the document writes it, then its parameters, body and options. */
export type Call<M extends Method> = <P extends PathsWith<M>, I extends Init<P, M>>(
  path: P,
  ...init: InitArgument<I>
) => Promise<AnswerOf<P, M, I>>;

/** The paths read and written whole under an ETag (`GET` gives it, `PUT` honours `If-Match`). */
export type VersionedPath = Extract<
  PathsWith<'get'> & PathsWith<'put'>,
  | '/v1/organizations/{organization}/quotas'
  | '/v1/organizations/{organization}/projects/{project}/quotas'
  | '/v1/organizations/{organization}/projects/{project}/allocations/{id}'
>;

type PutOf<P extends VersionedPath> = paths[P]['put'];
/** The body `PUT` of a versioned path takes. */
export type WriteBody<P extends VersionedPath> = NonNullable<PutOf<P>['requestBody']>['content']['application/json'];
/** What `GET` of a versioned path answers. */
export type ReadData<P extends VersionedPath> = AnswerOf<P, 'get', {}>['data'];

export interface UpdateOptions<P extends VersionedPath> {
  /** The write's query (`force`, `dryRun`). */
  query?: PutOf<P>['parameters']['query'];
  /** Reads and writes in all before a 412 is given up on (default 5). */
  attempts?: number;
}

export interface AllotClient {
  GET: Call<'get'>;
  PUT: Call<'put'>;
  POST: Call<'post'>;
  DELETE: Call<'delete'>;
  /**
   * Read-modify-write under the resource's ETag: reads `path`, asks `modify` for the new body,
   * writes it with `If-Match`; on a 412 (someone wrote in between) reads again and repeats, at
   * most `attempts` times in all. Resolves to the write's answer.
   */
  update<P extends VersionedPath>(
    path: P,
    params: { path: PutOf<P>['parameters']['path'] },
    modify: (current: ReadData<P>) => WriteBody<P> | Promise<WriteBody<P>>,
    options?: UpdateOptions<P>,
  ): Promise<AnswerOf<P, 'put', {}>>;
  /** The openapi-fetch client on the same transport: answers, never throws on a refusal. */
  raw: Client<paths>;
}

/**
 * Repeats read-then-write while the write is refused with 412 `precondition-failed` (the read's
 * ETag went stale), at most `attempts` times in all (default 5); any other outcome ends it.
 */
export async function readModifyWrite<R, W>(
  read: () => Promise<R>,
  write: (current: R) => Promise<W>,
  options: { attempts?: number } = {},
): Promise<W> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt += 1) {
    const current = await read();
    try {
      return await write(current);
    } catch (error) {
      if (!AllotProblem.is(error, 'precondition-failed') || attempt >= attempts) throw error;
    }
  }
}

type LooseRequest = (
  method: string,
  path: string,
  init?: Record<string, unknown>,
) => Promise<{ data?: unknown; error?: unknown; response: Response }>;

export function createClient(options: ClientOptions): AllotClient {
  const base = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const authorized: Fetch = async (request) => {
    if (!request.headers.has('authorization')) {
      const token = typeof options.token === 'function' ? await options.token() : options.token;
      request.headers.set('authorization', `Bearer ${token}`);
    }
    return base(request);
  };
  const retries = typeof options.retries === 'number' ? { retries: options.retries } : options.retries;
  const transport = retryingFetch(
    { fetch: authorized, clock: options.clock ?? systemClock, random: options.random ?? Math.random },
    retries,
  );
  const raw = createFetchClient<paths>({
    baseUrl: options.baseUrl,
    fetch: transport,
    ...(options.headers ? { headers: options.headers } : {}),
  });
  const request = raw.request as unknown as LooseRequest;

  const call = async (method: string, path: string, init?: Record<string, unknown>) => {
    const { data, error, response } = await request(method, path, init);
    if (!response.ok) throw new AllotProblem(response, error);
    return {
      data,
      status: response.status,
      etag: response.headers.get('etag') ?? undefined,
      replayed: response.headers.get('idempotent-replayed') === 'true',
      response,
    };
  };
  const method = (name: string) => ((path: string, init?: Record<string, unknown>) => call(name, path, init)) as never;

  return {
    GET: method('GET'),
    PUT: method('PUT'),
    POST: method('POST'),
    DELETE: method('DELETE'),
    update: (path, params, modify, updateOptions = {}) =>
      readModifyWrite(
        async () => {
          const read = await call('GET', path, { params: { path: params.path } });
          if (read.etag === undefined) throw new Error(`GET ${path} answered no ETag`);
          return read;
        },
        async (read) =>
          call('PUT', path, {
            params: { path: params.path, ...(updateOptions.query ? { query: updateOptions.query } : {}) },
            headers: { 'if-match': read.etag! },
            body: await modify(read.data as never),
          }),
        updateOptions.attempts === undefined ? {} : { attempts: updateOptions.attempts },
      ) as never,
    raw,
  };
}
