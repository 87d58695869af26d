/**
 * Who is asking, and may they. Authentication turns a bearer credential into a principal:
 * the bootstrap admin token (`ALLOT_ADMIN_TOKEN`, a service-admin), an API token (looked up by
 * its SHA-256 digest), or — when configured — a JWT signed by the configured issuer.
 * Authorization then asks the pure rules in domain/access.ts about the tenant the route names
 * (from its path) and the action the route declares: a tenant the principal cannot see is a
 * 404, an action its role lacks a 403. Both hooks are bound to the /v1 routes, not to URL
 * prefixes, so no spelling of a path reaches a route without them.
 *
 * An authentication is not forever: each carries `stillValid()`, which a long-lived response
 * (the watch stream) asks every few seconds, and the time its credential expires on its own.
 * API token lookups are cached for at most `authCacheTtlMs`, and dropped at once when this
 * process revokes a token or deletes a project.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canDo, canSee, type Action, type Principal } from '../domain/access.js';
import {
  authCacheTtlMs,
  strongAdminTokenLengthMin,
  authFailuresPerMinuteMax,
  knownCredentialRetentionMs,
  knownCredentialsMax,
} from '../domain/constants.js';
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

export interface Authentication {
  principal: Principal;
  /** When the credential ends on its own (a JWT's `exp`, an API token's expiry); null: never. */
  expiresAtMs: number | null;
  /** Whether the credential still stands: not revoked, not expired, its project not deleted. */
  stillValid(): Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking: set by authentication, recorded on every write. */
    principal: Principal;
    authentication: Authentication;
  }
  interface FastifyContextConfig {
    /** What the route does, for authorization. Every /v1 route declares one. */
    action?: Action;
    /** A route that only answers 405 for a method its path lacks (methods.ts): never counted. */
    methodNotAllowed?: boolean;
  }
}

export function principalOf(request: FastifyRequest): string {
  return request.principal.id;
}

/**
 * Turns credentials into authentications, caching API token lookups briefly: a token revoked
 * by another process stops working within `authCacheTtlMs`, one revoked here at once.
 */
export class Authenticator {
  private readonly adminDigest: Buffer;
  private readonly tokens = new Map<string, { grant: Awaited<ReturnType<Ledger['principalOfToken']>>; checkedAtMs: number }>();
  private readonly stopListening: () => void;

  constructor(
    private readonly ledger: Ledger,
    adminToken: string,
    private readonly jwt: JwtVerifier | undefined,
  ) {
    this.adminDigest = digest(adminToken);
    this.stopListening = ledger.onCredentialsChanged(() => this.tokens.clear());
  }

  close(): void {
    this.stopListening();
  }

  async authenticate(credential: string): Promise<Authentication | undefined> {
    if (timingSafeEqual(digest(credential), this.adminDigest)) {
      return { principal: adminPrincipal, expiresAtMs: null, stillValid: async () => true };
    }
    if (this.jwt && credential.split('.').length === 3) {
      const grant = await this.jwt.verify(credential);
      if (!grant) return undefined;
      const { principal, expiresAtMs } = grant;
      return {
        principal,
        expiresAtMs,
        stillValid: async () =>
          (expiresAtMs === null || this.ledger.clock.nowMs() < expiresAtMs) && (await this.projectStands(principal)),
      };
    }
    const grant = await this.lookUpToken(credential);
    if (!grant) return undefined;
    return {
      principal: grant.principal,
      expiresAtMs: grant.expiresAtMs,
      stillValid: async () => (await this.lookUpToken(credential))?.principal.id === grant.principal.id,
    };
  }

  private async lookUpToken(credential: string) {
    const key = digest(credential).toString('hex');
    const nowMs = this.ledger.clock.nowMs();
    const cached = this.tokens.get(key);
    if (cached && nowMs - cached.checkedAtMs < authCacheTtlMs) {
      const expiresAtMs = cached.grant?.expiresAtMs ?? null;
      return expiresAtMs !== null && expiresAtMs <= nowMs ? undefined : cached.grant;
    }
    const grant = await this.ledger.principalOfToken(credential);
    // Only known tokens are kept: unknown ones are what the failure limit is for.
    if (grant) {
      if (this.tokens.size >= knownCredentialsMax) this.tokens.clear();
      this.tokens.set(key, { grant, checkedAtMs: nowMs });
    } else this.tokens.delete(key);
    return grant;
  }

  /** A JWT names its project by claim; a deleted project leaves no token to revoke, so look. */
  private async projectStands(principal: Principal): Promise<boolean> {
    if (principal.organization === null || principal.project === null) return true;
    try {
      await this.ledger.getProject(principal.organization, principal.project);
      return true;
    } catch (error) {
      if (error instanceof AllotError && error.code === 'not-found') return false;
      throw error;
    }
  }
}

export interface AuthOptions {
  authenticator: Authenticator;
  /** The path parameters that name the tenant (default `organization` and `project`). */
  tenantParams?: { organization: string; project: string };
  /** Failed authentications, shared by every part of the app that authenticates. */
  failures: FailureCounter;
  clock: { nowMs(): number };
}

/** `Bearer` in any case (RFC 7235), one or more spaces, a visible-ASCII credential. */
const bearerPattern = /^bearer +([\x21-\x7e]{1,4096}) *$/i;

export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const { authenticator, failures, clock } = options;
  app.decorateRequest('principal', null as unknown as Principal);
  app.decorateRequest('authentication', null as unknown as Authentication);

  app.addHook('onRequest', async (request, reply) => {
    const source = request.ip;
    const match = bearerPattern.exec(request.headers.authorization ?? '');
    const credential = match?.[1];
    // An address over its failure budget may still present a credential that cannot be
    // guessed, or one that has worked here before: the budget stops guessing, not users who
    // share an address with someone who guesses.
    const limited = failures.limited(source, clock.nowMs());
    const tooMany = () => {
      reply.header('retry-after', '60');
      return new AllotError('too-many-requests', 'too many failed authentications from this address; wait a minute');
    };
    if (limited && !(credential && failures.exempt(credential, clock.nowMs()))) throw tooMany();
    const authentication = credential ? await authenticator.authenticate(credential) : undefined;
    if (authentication) {
      failures.succeeded(credential!, clock.nowMs());
      request.authentication = authentication;
      request.principal = authentication.principal;
      return;
    }
    failures.add(source, clock.nowMs());
    if (limited) throw tooMany();
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

/** API tokens carry 256 random bits; JWTs a signature: neither can be guessed online. */
const unguessable = (credential: string) =>
  /^allot_[A-Za-z0-9_-]{43}$/.test(credential) || credential.split('.').length === 3;


/**
 * Failed authentications per source address in the last minute, bounded in memory, and the
 * credentials that authenticated here lately (by digest), which the limit does not stop.
 */
export class FailureCounter {
  private readonly windows = new Map<string, { startMs: number; count: number }>();
  private readonly known = new Map<string, number>();
  private static readonly addressesMax = 10_000;
  private readonly strongAdminDigest: Buffer | undefined;

  constructor(adminToken?: string) {
    if (adminToken !== undefined && adminToken.length >= strongAdminTokenLengthMin) this.strongAdminDigest = digest(adminToken);
  }

  limited(source: string, nowMs: number): boolean {
    const window = this.windows.get(source);
    return window !== undefined && nowMs - window.startMs < 60_000 && window.count >= authFailuresPerMinuteMax;
  }

  /** Whether a credential is checked even from an address over its budget. */
  exempt(credential: string, nowMs: number): boolean {
    if (unguessable(credential)) return true;
    const credentialDigest = digest(credential);
    if (this.strongAdminDigest && timingSafeEqual(credentialDigest, this.strongAdminDigest)) return true;
    const seenMs = this.known.get(credentialDigest.toString('hex'));
    return seenMs !== undefined && nowMs - seenMs < knownCredentialRetentionMs;
  }

  succeeded(credential: string, nowMs: number): void {
    const key = digest(credential).toString('hex');
    this.known.delete(key);
    if (this.known.size >= knownCredentialsMax) this.known.delete(this.known.keys().next().value!);
    this.known.set(key, nowMs);
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
