/**
 * What a route is, apart from where it is mounted: an endpoint (its schema and its handler).
 * The API's routes are one table (`routes/table.ts`: method, path, action, endpoint); the
 * endpoints live with their resource (`routes/<resource>.ts`). Most endpoints are one of two
 * shapes, built here so a route says only what differs:
 * - `decision`: the request's operation goes through the group commit (`mutation.ts`), and
 *   `outcome` turns its result into the answer (status, ETag, Location);
 * - `read`: the answer is what `read` returns, with its ETag when it has a generation.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  ContextConfigDefault,
  FastifyReply,
  FastifyRequest,
  FastifySchema,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
  RouteGenericInterface,
  preValidationHookHandler,
} from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import type { Operation } from '../ledger/engine/operations.js';
import { etagOf } from './etag.js';
import { decideOne, respond, type HttpOutcome } from './mutation.js';
import type { WriteOptions } from '../ledger/types.js';
import type { Watchers } from './watchers.js';
import type { AllowList } from '../webhooks/address.js';

export type Request<S extends FastifySchema> = FastifyRequest<
  RouteGenericInterface,
  RawServerDefault,
  RawRequestDefaultExpression,
  S,
  TypeBoxTypeProvider
>;
export type Reply<S extends FastifySchema> = FastifyReply<
  RouteGenericInterface,
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  ContextConfigDefault,
  S,
  TypeBoxTypeProvider
>;

/** What every handler may use: the ledger, and the process's watch streams. */
export interface Api {
  ledger: Ledger;
  watchers: Watchers;
  /** Addresses webhook targets may have though private or loopback (`--webhook-allow`). */
  webhookAllow: AllowList;
}

export interface Endpoint<S extends FastifySchema = FastifySchema> {
  schema: S & { summary: string; description?: string };
  handler(request: Request<S>, reply: Reply<S>, api: Api): Promise<unknown>;
  /** A body limit other than the server's. */
  bodyLimit?: number;
  /** Runs before the body is validated (to default an absent body, say). */
  preValidation?: preValidationHookHandler;
  /** Headers its success answers carry, declared in the OpenAPI document. */
  answers?: Answers;
  /** The body may be left out (the document marks it optional). */
  bodyOptional?: boolean;
}

/** Headers a success answer carries: an ETag of its generation; a Location of what it created. */
export interface Answers {
  etag?: boolean;
  location?: boolean;
}

/** Checks an endpoint against its own schema, then forgets the schema's type for the table. */
export const endpoint = <S extends FastifySchema>(definition: Endpoint<S>): Endpoint => definition as unknown as Endpoint;

/** A decision: the request's operation, answered by `outcome` (a refusal is its problem). */
export function decision<S extends FastifySchema, T>(
  schema: S & { summary: string; description?: string },
  operation: (request: Request<S>) => Operation,
  outcome: (result: T) => HttpOutcome,
  options: Pick<Endpoint, 'preValidation' | 'answers' | 'bodyOptional'> = {},
): Endpoint {
  return endpoint<S>({
    schema,
    ...options,
    handler: (request, reply, { ledger }) => decideOne(ledger, request, reply, operation(request), outcome),
  });
}

/**
 * A write that is not a decision (limits, regions): run once per `Idempotency-Key`, its answer
 * stored in its own transaction (`respond` in mutation.ts).
 */
export function write<S extends FastifySchema, T>(
  schema: S & { summary: string; description?: string },
  run: (request: Request<S>, options: WriteOptions<T>, api: Api) => Promise<T>,
  outcome: (result: T) => HttpOutcome,
): Endpoint {
  return endpoint<S>({
    schema,
    handler: (request, reply, api) => respond(api.ledger, request, reply, (options) => run(request, options, api), outcome),
  });
}

/** The answer of a write: 200 and the result. */
export const ok = <T>(body: T): HttpOutcome => ({ status: 200, headers: {}, body });

/** A read: the answer is what `run` returns; with `etag`, its generation is the ETag. */
export function read<S extends FastifySchema>(
  schema: S & { summary: string; description?: string },
  run: (request: Request<S>, api: Api) => Promise<unknown>,
  options: { etag?: boolean } = {},
): Endpoint {
  return endpoint<S>({
    schema,
    answers: { etag: options.etag ?? false },
    handler: async (request, reply, api) => {
      const value = await run(request, api);
      if (options.etag) reply.header('etag', etagOf((value as { generation: number }).generation));
      return value;
    },
  });
}

/** The answer of a delete: 204, nothing else. */
export const deleted = (): HttpOutcome => ({ status: 204, headers: {}, body: undefined });

/** `?limit=` (the page size) as a number, when given. */
export const numberOrUndefined = (value: string | undefined) => (value === undefined ? undefined : Number(value));
