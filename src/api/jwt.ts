/**
 * Optional OIDC/JWT bearer tokens, verified with `jose` against the issuer's keys (a JWKS file
 * or URL). Claims name the role and the scope; their names are configurable.
 *
 * A claim is either absent or well-formed: an organization or project claim that is present
 * but not an id (an array, a number, an object, null) refuses the token, because reading it as
 * "no organization" would widen a scoped role to every tenant. A token without `exp` is
 * refused unless the operator allows it (`allowNoExpiry`): a leaked one would never end.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { checkScope, roles, type Principal, type Role } from '../domain/access.js';
import { storableTextProblem } from '../domain/text.js';
import { idPattern } from '../domain/text.js';

export interface JwtOptions {
  issuer: string;
  /** A path to a JWKS file, or an https:// or http:// URL serving one. */
  jwks: string;
  audience?: string;
  roleClaim?: string;
  organizationClaim?: string;
  projectClaim?: string;
  /** Accept tokens without an `exp` claim (default: refused). */
  allowNoExpiry?: boolean;
}

export interface JwtGrant {
  principal: Principal;
  /** The token's `exp` in milliseconds, or null for a token without one (when allowed). */
  expiresAtMs: number | null;
}

export interface JwtVerifier {
  verify(token: string): Promise<JwtGrant | undefined>;
}

/** A subject becomes part of the principal recorded on every write: printable, bounded. */
const subjectLengthMax = 255;

export function jwtVerifier(options: JwtOptions): JwtVerifier {
  const keys: JWTVerifyGetKey = /^https?:\/\//.test(options.jwks)
    ? createRemoteJWKSet(new URL(options.jwks))
    : createLocalJWKSet(JSON.parse(readFileSync(options.jwks, 'utf8')));
  const roleClaim = options.roleClaim ?? 'allot_role';
  const organizationClaim = options.organizationClaim ?? 'allot_organization';
  const projectClaim = options.projectClaim ?? 'allot_project';
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: options.issuer,
          ...(options.audience ? { audience: options.audience } : {}),
          ...(options.allowNoExpiry ? {} : { requiredClaims: ['exp'] }),
        });
        const role = payload[roleClaim];
        const organization = idClaim(payload, organizationClaim);
        const project = idClaim(payload, projectClaim);
        if (organization === undefined || project === undefined) return undefined;
        if (typeof role !== 'string' || !roles.includes(role as Role)) return undefined;
        if (checkScope(role as Role, organization, project) !== null) return undefined;
        const subject = payload.sub;
        if (typeof subject !== 'string' || subject.length === 0 || [...subject].length > subjectLengthMax) return undefined;
        if (storableTextProblem(subject) !== null || /[\u0000-\u001f\u007f]/.test(subject)) return undefined;
        return {
          principal: { id: `jwt:${subject}`, role: role as Role, organization, project },
          expiresAtMs: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
        };
      } catch {
        return undefined;
      }
    },
  };
}

/** An id claim: null when absent, the id when well-formed, undefined (refuse) otherwise. */
function idClaim(payload: Record<string, unknown>, name: string): string | null | undefined {
  if (!Object.hasOwn(payload, name)) return null;
  const value = payload[name];
  return typeof value === 'string' && idPattern.test(value) ? value : undefined;
}
