/**
 * A path asked with a method it does not have answers 405 with `Allow` (RFC 9110), not 404:
 * every route's path is remembered as it is added, and once all are, each path gets one more
 * route for the methods it lacks, in the same scope (so the caller is authenticated as for the
 * path's other methods, and the identity service's paths answer in its error format).
 */
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { AllotError } from '../domain/errors.js';

const methods: readonly HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** Starts remembering routes; call what it returns after the last route is added. */
export function installMethodNotAllowed(app: FastifyInstance): () => void {
  const allowedByPath = new Map<string, Set<string>>();
  const scopeOfPath = new Map<string, FastifyInstance>();
  let mounted = false;
  app.addHook('onRoute', function (this: FastifyInstance, route) {
    if (mounted) return;
    scopeOfPath.set(route.url, this);
    const allowed = allowedByPath.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) allowed.add(method.toUpperCase());
    // Fastify answers HEAD for every GET.
    if (allowed.has('GET')) allowed.add('HEAD');
    allowedByPath.set(route.url, allowed);
  });
  return () => {
    mounted = true;
    for (const [url, allowed] of allowedByPath) {
      // A wildcard (the dashboard's assets) answers its own 404s for every path below it.
      if (url.includes('*')) continue;
      const missing = methods.filter((method) => !allowed.has(method));
      if (missing.length === 0) continue;
      const allow = methods.filter((method) => allowed.has(method)).join(', ');
      scopeOfPath.get(url)!.route({
        method: [...missing],
        url,
        config: { action: 'read', methodNotAllowed: true },
        schema: { hide: true },
        // Before the body is read (its type or size would answer first): after the scope's
        // own onRequest hooks, so authentication still comes first.
        onRequest: async (request, reply) => {
          reply.header('allow', allow);
          throw new AllotError('method-not-allowed', `${request.method} is not allowed here; allowed: ${allow}`);
        },
        handler: async () => undefined,
      });
    }
  };
}
