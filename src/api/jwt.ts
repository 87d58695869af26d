/**
 * Optional OIDC/JWT bearer tokens, verified with `jose` against the issuer's keys (a JWKS file
 * or URL). Claims name the role and the scope; their names are configurable.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { checkScope, roles, type Principal, type Role } from '../domain/access.js';

export interface JwtOptions {
  issuer: string;
  /** A path to a JWKS file, or an https:// or http:// URL serving one. */
  jwks: string;
  audience?: string;
  roleClaim?: string;
  organizationClaim?: string;
  projectClaim?: string;
}

export interface JwtVerifier {
  verify(token: string): Promise<Principal | undefined>;
}

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
        });
        const role = payload[roleClaim];
        const organization = stringOrNull(payload[organizationClaim]);
        const project = stringOrNull(payload[projectClaim]);
        if (typeof role !== 'string' || !roles.includes(role as Role)) return undefined;
        if (checkScope(role as Role, organization, project) !== null) return undefined;
        if (typeof payload.sub !== 'string') return undefined;
        return { id: `jwt:${payload.sub}`, role: role as Role, organization, project };
      } catch {
        return undefined;
      }
    },
  };
}

const stringOrNull = (value: unknown) => (typeof value === 'string' ? value : null);
