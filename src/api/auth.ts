/**
 * Who is asking, and may they. Authentication turns a bearer credential into a principal:
 * the bootstrap admin token (`ALLOT_ADMIN_TOKEN`, a service-admin), an API token (looked up by
 * its SHA-256 digest), or — when configured — a JWT signed by the configured issuer.
 * Authorization then asks the pure rules in domain/access.ts about the tenant the route names
 * (from its path) and the action the route declares: a tenant the principal cannot see is a
 * 404, an action its role lacks a 403. Both hooks are bound to the /v1 routes, not to URL
 * prefixes, so no spelling of a path reaches a route without them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canDo, canSee, type Action, type Principal } from '../domain/access.js';
import { authFailuresPerMinuteMax } from '../domain/constants.js';
import { AllotError, notFound } from '../domain/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import type { JwtVerifier } from './jwt.js';

const digest = (token: string) => createHash('sha256').update(token).digest();

export const adminPrincipal: Principal = {
  id: 'admin',
  role: 'service-admin',
  organization: null,
  project: null,
};

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking: set by authentication, recorded on every write. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** What the route does, for authorization. Every /v1 route declares one. */
    action?: Action;
  }
}

export function principalOf(request: FastifyRequest): string {
  return request.principal.id;
}

export interface AuthOptions {
  ledger: Ledger;
  adminToken: string;
  jwt?: JwtVerifier;
  /** The path parameters that name the tenant (default `organization` and `project`). */
  tenantParams?: { organization: string; project: string };
  /** Failed authentications, shared by every part of the app that authenticates. */
  failures?: FailureCounter;
}

export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const expected = digest(options.adminToken);
  const failures = options.failures ?? new FailureCounter();
  app.decorateRequest('principal', null as unknown as Principal);

  app.addHook('onRequest', async (request, reply) => {
    const source = request.ip;
    if (failures.limited(source, options.ledger.clock.nowMs())) {
      reply.header('retry-after', '60');
      throw new AllotError('too-many-requests', 'too many failed authentications from this address; wait a minute');
    }
    const match = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(request.headers.authorization ?? '');
    const principal = match ? await authenticate(match[1]!, expected, options) : undefined;
    if (principal) {
      request.principal = principal;
      return;
    }
    failures.add(source, options.ledger.clock.nowMs());
    reply.header('www-authenticate', 'Bearer realm="allot"');
    throw new AllotError(
      'unauthorized',
      match ? 'the bearer token is not valid' : 'send Authorization: Bearer <token>',
    );
  });

  app.addHook('preHandler', async (request) => {
    const action = request.routeOptions.config.action;
    if (action === undefined) throw new Error(`route ${request.routeOptions.url} declares no action`);
    const params = (request.params ?? {}) as Record<string, string | undefined>;
    const names = options.tenantParams ?? { organization: 'organization', project: 'project' };
    const scope = { organization: params[names.organization], project: params[names.project] };
    if (!canSee(request.principal, scope)) {
      throw notFound(
        scope.project === undefined
          ? `organization "${scope.organization}"`
          : `project "${scope.project}" in organization "${scope.organization}"`,
      );
    }
    if (!canDo(request.principal, action)) {
      throw new AllotError('forbidden', `a ${request.principal.role} may not do this`);
    }
  });
}

async function authenticate(
  credential: string,
  expected: Buffer,
  options: AuthOptions,
): Promise<Principal | undefined> {
  if (timingSafeEqual(digest(credential), expected)) return adminPrincipal;
  if (options.jwt && credential.split('.').length === 3) return options.jwt.verify(credential);
  return options.ledger.principalOfToken(credential);
}

/** Failed authentications per source address in the last minute, bounded in memory. */
export class FailureCounter {
  private readonly windows = new Map<string, { startMs: number; count: number }>();
  private static readonly addressesMax = 10_000;

  limited(source: string, nowMs: number): boolean {
    const window = this.windows.get(source);
    return window !== undefined && nowMs - window.startMs < 60_000 && window.count >= authFailuresPerMinuteMax;
  }

  add(source: string, nowMs: number): void {
    const window = this.windows.get(source);
    if (window && nowMs - window.startMs < 60_000) {
      window.count += 1;
      return;
    }
    if (this.windows.size >= FailureCounter.addressesMax) this.windows.clear();
    this.windows.set(source, { startMs: nowMs, count: 1 });
  }
}
