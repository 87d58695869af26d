/**
 * The OpenAPI document, as the whole truth of what the server answers: every route of the
 * table with its operationId, its tag (declared), and every status it can send — the ones its
 * endpoint declares, and those every route of its kind can meet (authentication, roles, limits
 * on bodies, an unavailable database); errors as application/problem+json; the headers of its
 * answers (ETag, Location, Idempotent-Replayed, Retry-After). Checked by Spectral's OpenAPI
 * rules and by validating every answer of the API tests against it (test/api/contract.test.ts).
 */
import type { SwaggerOptions } from '@fastify/swagger';
import type { FastifySchema } from 'fastify';
import { apiVersion } from '../domain/constants.js';
import { errorCodes, type ErrorCode } from '../domain/errors.js';
import { problemResponses, webhookEvents } from '../schemas/index.js';
import { problemContentType, problemTypeOf } from './problems.js';
import type { Answers } from './route.js';
import { table, tags, type Row } from './routes/table.js';

/** What the document says beyond the routes' schemas, per operationId (from the table). */
const answersOf = new Map<string, Answers & { keyed: boolean; bodyOptional: boolean }>(
  table.map(({ operationId, endpoint }) => [
    operationId,
    { ...endpoint.answers, keyed: hasHeader(endpoint.schema, 'idempotency-key'), bodyOptional: endpoint.bodyOptional ?? false },
  ]),
);

/** A table row's schema as mounted: its endpoint's, with operationId, tag and every status. */
export function schemaOf(row: Row): FastifySchema {
  const { endpoint } = row;
  const schema = endpoint.schema as FastifySchema & { response?: Record<string, unknown> };
  const { keyed } = answersOf.get(row.operationId)!;
  const statuses = [400, 401, 429, 500, 503];
  // A role may lack every action but reading its own tenants, which answers 404 instead.
  if (row.action !== 'read') statuses.push(403);
  if (row.path.includes(':')) statuses.push(404);
  if (schema.body) statuses.push(413, 415);
  // A key still running answers 409 request-in-progress; reused with another request, 422.
  if (keyed) statuses.push(409, 422);
  if (hasHeader(schema, 'if-match')) statuses.push(412);
  const declared = schema.response ?? {};
  const missing = statuses.filter((status) => !(status in declared));
  return {
    ...schema,
    operationId: row.operationId,
    tags: [row.tag],
    response: { ...declared, ...problemResponses(...missing) },
  };
}

function hasHeader(schema: FastifySchema, name: string): boolean {
  const properties = (schema.headers as { properties?: Record<string, unknown> } | undefined)?.properties;
  return properties !== undefined && name in properties;
}

/** What allot POSTs to a subscription's URL (docs/webhooks.md), one entry per event type. */
function webhooksDocument() {
  const signed = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => ({
    name,
    in: 'header',
    required: true,
    schema: { type: 'string' },
    description: 'Standard Webhooks: the event id (the same on every resend), the seconds since the epoch, the signature (v1,<base64>)',
  }));
  return Object.fromEntries(
    Object.entries(webhookEvents).map(([type, schema]) => [
      type,
      {
        post: {
          operationId: `webhook:${type}`,
          tags: ['subscriptions'],
          summary: `The ${type} event`,
          description: 'Sent at least once, in revision order per subscription and organization; deduplicate on webhook-id. Any 2xx answer acknowledges it.',
          parameters: signed,
          requestBody: { required: true, content: { 'application/json': { schema } } },
          responses: { '200': { description: 'Received (any 2xx)' } },
        },
      },
    ]),
  );
}

export const documentOptions: SwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'allot',
      version: apiVersion,
      description:
        'A quota ledger for multi-tenant platforms. Errors are application/problem+json; ' +
        `problem types: ${Object.keys(errorCodes).map((code) => problemTypeOf(code as ErrorCode)).join(', ')}. ` +
        'A path asked with a method it does not have answers 405 with Allow.',
      contact: { name: 'The allot maintainers' },
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [
      {
        url: '{scheme}://{host}',
        description: 'An allot server (allot serve)',
        variables: { scheme: { default: 'http', enum: ['http', 'https'] }, host: { default: 'localhost:7070' } },
      },
    ],
    tags: [...tags],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    webhooks: webhooksDocument() as never,
  },
  refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => String(json.$id ?? `def-${index}`) },
  transformObject: (documentObject) => declareAnswers((documentObject as { openapiObject: Document }).openapiObject) as never,
};

interface Operation {
  operationId?: string;
  requestBody?: { required?: boolean };
  responses?: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, unknown> }>;
}
interface Document {
  paths?: Record<string, Record<string, Operation>>;
}

const header = (description: string) => ({ description, schema: { type: 'string' } });

/**
 * Errors as application/problem+json (Fastify's serializer needs them as JSON schemas, which
 * the document would otherwise list as application/json); the headers answers carry.
 */
function declareAnswers(document: Document): Document {
  for (const methods of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(methods)) {
      const answers = operation.operationId ? answersOf.get(operation.operationId) : undefined;
      if (answers?.bodyOptional && operation.requestBody) operation.requestBody.required = false;
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const code = Number(status);
        if (code >= 400 && response.content?.['application/json']) {
          response.content = { [problemContentType]: response.content['application/json'] };
        }
        const headers: Record<string, unknown> = { ...response.headers };
        if (code === 429 || code === 503) headers['Retry-After'] = header('Seconds to wait before retrying');
        if (code >= 200 && code < 300) {
          if (answers?.etag) headers.ETag = header('The generation of what was read or written; send it in If-Match');
          if (answers?.location && code === 201) headers.Location = header('The path of what was created');
        }
        // A retry with the same key gets the first answer again, a refusal's included.
        if (answers?.keyed && code < 500) {
          headers['Idempotent-Replayed'] = header('true: the stored answer of an earlier request with the same Idempotency-Key');
        }
        if (Object.keys(headers).length > 0) response.headers = headers;
      }
    }
  }
  return document;
}
