/**
 * Every error leaves as `application/problem+json` (RFC 9457) with a stable `type` per code.
 * Deliberate errors (AllotError) and Fastify's own 4xx (validation, bad JSON, body too large)
 * pass through with their meaning; anything else is logged and answered with a generic 500,
 * never with a driver's message.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AllotError, errorCodes, type ErrorCode, type FieldError } from '../domain/errors.js';

export const problemTypeOf = (code: ErrorCode) => `/problems/${code}`;

/** The problem document of an error, as status and body. */
export function problemOf(error: AllotError, instance: string) {
  const { status, title } = errorCodes[error.code];
  const body = {
    type: problemTypeOf(error.code),
    title,
    status,
    detail: error.detail,
    instance,
    ...error.extensions,
  };
  return { status, body };
}

export const problemContentType = 'application/problem+json';

declare module 'fastify' {
  interface FastifyRequest {
    /** The problem this request was answered with, if any (for metrics). */
    problemCode?: ErrorCode;
  }
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: AllotError) {
  request.problemCode = error.code;
  const { status, body } = problemOf(error, request.url);
  // Unavailable is worth retrying, after a moment (a closing server, a full queue, a lost database).
  if (status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '1');
  return reply.code(status).type(problemContentType).send(body);
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AllotError) {
      // An unavailable database is answered 503, and the operator hears of it.
      if (error.cause !== undefined) request.log.warn({ err: error.cause }, error.detail);
      return sendProblem(reply, request, error);
    }
    if (error.validation) return sendProblem(reply, request, validationProblem(error));
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendProblem(reply, request, clientProblem(error, status, request));
    request.log.error({ err: error }, 'unexpected error');
    return sendProblem(
      reply,
      request,
      new AllotError('internal-error', 'The server could not complete the request.'),
    );
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, new AllotError('not-found', `no route for ${request.method} ${request.url}`)),
  );
}

/**
 * Names a field the way the ledger's own checks do: `allocations[0].committed` in the body,
 * the bare name of a query or path parameter, and the part itself (`body`) when the whole part
 * is wrong. A missing property is named by its own path.
 */
function fieldOf(part: string, issue: Issue): string {
  const missing = (issue.params as { missingProperty?: string }).missingProperty;
  const segments = [...issue.instancePath.split('/').filter(Boolean), ...(missing ? [missing] : [])];
  if (segments.length === 0) return part;
  return segments
    .map((segment, index) => (/^[0-9]+$/.test(segment) ? `[${segment}]` : index === 0 ? segment : `.${segment}`))
    .join('');
}

export function validationProblem(error: Pick<FastifyError, "validation" | "validationContext">): AllotError {
  const part = error.validationContext ?? 'body';
  const issues = error.validation ?? [];
  // A union (anyOf) reports one error per branch plus its own; keep only its own, worded
  // with the schema's description, so "2.5" gets one clear message instead of three.
  const outermostUnion = new Map<string, Issue>();
  for (const issue of issues) {
    const kept = outermostUnion.get(issue.instancePath);
    if (issue.keyword === 'anyOf' && (!kept || issue.schemaPath.length < kept.schemaPath.length)) {
      outermostUnion.set(issue.instancePath, issue);
    }
  }
  const errors: FieldError[] = issues
    .filter((issue) => (outermostUnion.get(issue.instancePath) ?? issue) === issue)
    .map((issue) => ({ field: fieldOf(part, issue), message: messageOf(issue) }));
  const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return new AllotError('invalid-request', detail || 'the request is invalid', { errors });
}

type Issue = NonNullable<FastifyError['validation']>[number] & { parentSchema?: { description?: string } };

function messageOf(issue: Issue): string {
  if (issue.keyword === 'additionalProperties') {
    const name = (issue.params as { additionalProperty?: string }).additionalProperty;
    return `unknown property "${String(name)}"`;
  }
  if (issue.keyword === 'anyOf') {
    const description = issue.parentSchema?.description;
    return description ? `must be ${lowerFirst(description)}` : 'matches none of the allowed forms';
  }
  return issue.message ?? 'is invalid';
}

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);

function clientProblem(error: FastifyError, status: number, request: FastifyRequest): AllotError {
  const code: ErrorCode =
    status === 413 ? 'payload-too-large' : status === 415 ? 'unsupported-media-type' : 'invalid-request';
  if (code !== 'invalid-request') return new AllotError(code, errorCodes[code].title);
  // A file server's refusal (a path that climbs out of its root, a hidden file) is no answer
  // about the body: to the client the file does not exist.
  if (status === 403 || status === 404) return new AllotError('not-found', `no file at ${request.url}`);
  const part = error.code?.startsWith('FST_ERR_CTP_') ? 'body' : 'request';
  const message = `could not be read: ${error.message}`;
  return new AllotError('invalid-request', `${part}: ${message}`, { errors: [{ field: part, message }] });
}
