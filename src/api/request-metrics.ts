/**
 * Counts every response into the request metrics (controller/metrics.ts): its latency by route
 * and status, idempotent replays, and for mutating routes the mutations and denials. The route
 * is the pattern the request matched (`POST /v1/organizations/:organization/projects`), never
 * the URL, so the series are bounded by the route table; a request no route matched counts as
 * `unmatched`, and so does one answered 405 for a method its path lacks.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from '../controller/metrics.js';
import { errorCodes, type ErrorCode } from '../domain/errors.js';

const problemType = /"type":"[^"]*\/problems\/([a-z-]+)"/;

/** The route label of a request: its method and route pattern. */
export function routeOf(request: FastifyRequest): string {
  const pattern = request.routeOptions.url;
  // A method the path lacks matched only its 405 (methods.ts): no route of the API.
  if (pattern === undefined || request.routeOptions.config.methodNotAllowed) return 'unmatched';
  return `${request.method} ${pattern}`;
}

export function installRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  // A refusal decided by the group commit leaves as a stored answer, not through sendProblem:
  // its code is read from the problem document on its way out.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.problemCode === undefined && reply.statusCode >= 400 && typeof payload === 'string') {
      const code = problemType.exec(payload.slice(0, 200))?.[1];
      if (code !== undefined && code in errorCodes) request.problemCode = code as ErrorCode;
    }
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = routeOf(request);
    const status = String(reply.statusCode);
    metrics.http.seconds.observe({ route, status }, reply.elapsedTime / 1000);
    if (reply.getHeader('idempotent-replayed') === 'true') metrics.http.replays.inc({ route });
    if (request.method === 'GET' || request.method === 'HEAD' || route === 'unmatched') return;
    metrics.http.mutations.inc({ route, status });
    if (request.problemCode === 'quota-exceeded') metrics.http.denials.inc({ route });
  });
}
