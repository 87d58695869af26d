// Goal: JWT bearer tokens (OIDC) are accepted only when signed by the configured issuer's key,
// from that issuer, unexpired, with a known role and the scope that role needs; an accepted
// JWT acts exactly as its role and scope allow and its writes are recorded as `jwt:<sub>`;
// the claim names are configurable.
// Method: make an RS256 key pair with `jose`, write its public key as a JWKS file in a temp
// directory, build the app with `jwtVerifier({ issuer, jwks: <file> })`, sign tokens with
// `SignJWT` (and forge some: another key, alg none, a tampered payload) and drive the app
// through `app.inject`, for every engine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload, type KeyLike } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { jwtVerifier } from '../../src/api/jwt.js';
import type { Engine } from '../../src/store/store.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken, expectProblem, type ApiResponse } from './harness.js';

const issuer = 'https://issuer.test';
const kid = 'test-key-1';

interface Keys {
  privateKey: KeyLike;
  otherPrivateKey: KeyLike;
  dir: string;
  jwks: string;
}

async function makeKeys(): Promise<Keys> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const dir = mkdtempSync(join(tmpdir(), 'allot-jwt-'));
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [jwk] }));
  return { privateKey, otherPrivateKey: other.privateKey, dir, jwks };
}

interface SignOptions {
  key?: KeyLike;
  issuer?: string;
  subject?: string | null;
  /** null: no `exp` claim at all. */
  expiresAt?: number | string | null;
  notBefore?: number;
  audience?: string;
}

function sign(keys: Keys, claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(options.issuer ?? issuer)
    .setIssuedAt();
  if (options.expiresAt !== null) jwt = jwt.setExpirationTime(options.expiresAt ?? '5m');
  if (options.subject !== null) jwt = jwt.setSubject(options.subject ?? 'alice');
  if (options.notBefore !== undefined) jwt = jwt.setNotBefore(options.notBefore);
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
  return jwt.sign(options.key ?? keys.privateKey);
}

let addressCount = 0;
async function as(
  app: FastifyInstance,
  token: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body?: unknown,
  scheme = 'Bearer',
): Promise<ApiResponse> {
  // A fresh source address per request, so the refusals this file provokes never reach the
  // failed-authentication limit.
  addressCount += 1;
  const response = await app.inject({
    method,
    url,
    remoteAddress: `10.9.${(addressCount >> 8) & 255}.${addressCount & 255}`,
    headers: {
      authorization: `${scheme} ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  let json: any;
  try {
    json = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text: response.body, json };
}

const allocationBody = (id: string) => ({
  resource: { kind: 'vm', id },
  allocations: [{ kind: 'cpu', committed: 1 }],
});

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe.each(engines)('JWT bearer tokens on %s', (engine: Engine) => {
  let keys: Keys;
  let test: TestLedger;
  let app: FastifyInstance;
  let renamed: FastifyInstance;
  let audienced: FastifyInstance;
  let lenient: FastifyInstance;

  beforeAll(async () => {
    keys = await makeKeys();
    test = await openTestLedger(engine);
    const { ledger } = test;
    await ledger.putKind('cpu', { displayName: 'CPU' });
    for (const organization of ['o1', 'o2']) {
      await ledger.putOrganization(organization, {});
      await ledger.putProject(organization, 'p1', {});
      await ledger.putProject(organization, 'p2', {});
      await ledger.setQuotas(organization, [{ kind: 'cpu', quantity: 100 }]);
    }
    app = await buildApp({ ledger, adminToken, jwt: jwtVerifier({ issuer, jwks: keys.jwks }) });
    renamed = await buildApp({
      ledger,
      adminToken,
      jwt: jwtVerifier({
        issuer,
        jwks: keys.jwks,
        roleClaim: 'groups_role',
        organizationClaim: 'groups_org',
        projectClaim: 'groups_project',
      }),
    });
    audienced = await buildApp({
      ledger,
      adminToken,
      jwt: jwtVerifier({ issuer, jwks: keys.jwks, audience: 'allot-api' }),
    });
    lenient = await buildApp({ ledger, adminToken, jwt: jwtVerifier({ issuer, jwks: keys.jwks, allowNoExpiry: true }) });
  });
  afterAll(async () => {
    await app?.close();
    await renamed?.close();
    await audienced?.close();
    await lenient?.close();
    await test?.close();
    if (keys) rmSync(keys.dir, { recursive: true, force: true });
  });

  const orgAdmin = { allot_role: 'org-admin', allot_organization: 'o1' };

  it('a valid JWT for an org-admin of o1 works on o1 and sees no other organization', async () => {
    const token = await sign(keys, orgAdmin);
    const quotas = await as(app, token, 'GET', '/v1/organizations/o1/quotas');
    expect(quotas.status, quotas.text).toBe(200);
    expect(quotas.json.organization).toBe('o1');
    expectProblem(await as(app, token, 'GET', '/v1/organizations/o2/quotas'), 'not-found');
    expectProblem(await as(app, token, 'GET', '/v1/organizations/o2/projects/p1/allocations'), 'not-found');
    // It is an org-admin, not a service-admin.
    expectProblem(await as(app, token, 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs' }), 'forbidden');
    expectProblem(await as(app, token, 'PUT', '/v1/organizations/o1/quotas', { quotas: [{ kind: 'cpu', quantity: 1000 }] }), 'forbidden');
    expectProblem(await as(app, token, 'GET', '/v1/tokens'), 'forbidden');
    const organizations = await as(app, token, 'GET', '/v1/organizations');
    expect(organizations.status).toBe(200);
  });

  it('an allocation made with the JWT is recorded as jwt:<sub>', async () => {
    const token = await sign(keys, orgAdmin);
    const created = await as(app, token, 'POST', '/v1/organizations/o1/projects/p1/allocations', allocationBody('vm-a'));
    expect(created.status, created.text).toBe(201);
    expect(created.json.createdBy).toBe('jwt:alice');
    expect(created.json.updatedBy).toBe('jwt:alice');
    const read = await as(app, adminToken, 'GET', `/v1/organizations/o1/projects/p1/allocations/${created.json.id}`);
    expect(read.json.createdBy).toBe('jwt:alice');
    const journal = await as(app, adminToken, 'GET', '/v1/organizations/o1/journal');
    expect(journal.json.items.some((entry: any) => entry.principal === 'jwt:alice')).toBe(true);
    // Another subject is another principal.
    const bob = await sign(keys, orgAdmin, { subject: 'bob' });
    const byBob = await as(app, bob, 'POST', '/v1/organizations/o1/projects/p2/allocations', allocationBody('vm-b'));
    expect(byBob.json.createdBy).toBe('jwt:bob');
  });

  it('a project-member JWT reaches its project only', async () => {
    const token = await sign(keys, { allot_role: 'project-member', allot_organization: 'o1', allot_project: 'p1' });
    expect((await as(app, token, 'GET', '/v1/organizations/o1/projects/p1/allocations')).status).toBe(200);
    expectProblem(await as(app, token, 'GET', '/v1/organizations/o1/projects/p2/allocations'), 'not-found');
    expectProblem(await as(app, token, 'GET', '/v1/organizations/o2/projects/p1/allocations'), 'not-found');
  });

  const refused: [string, (keys: Keys) => Promise<string>][] = [
    ['a wrong issuer', (k) => sign(k, orgAdmin, { issuer: 'https://evil.test' })],
    ['an issuer that differs by a trailing slash', (k) => sign(k, orgAdmin, { issuer: `${issuer}/` })],
    ['an expired token', (k) => sign(k, orgAdmin, { expiresAt: nowSeconds() - 3600 })],
    ['a token not valid before an hour from now', (k) => sign(k, orgAdmin, { notBefore: nowSeconds() + 3600 })],
    ['a signature by another key', (k) => sign(k, orgAdmin, { key: k.otherPrivateKey })],
    ['no role claim', (k) => sign(k, { allot_organization: 'o1' })],
    ['an unknown role', (k) => sign(k, { allot_role: 'root', allot_organization: 'o1' })],
    ['a role that is not a string', (k) => sign(k, { allot_role: ['service-admin'], allot_organization: 'o1' })],
    ['an org-admin without an organization', (k) => sign(k, { allot_role: 'org-admin' })],
    ['a reader without an organization', (k) => sign(k, { allot_role: 'reader' })],
    ['a project-member without a project', (k) => sign(k, { allot_role: 'project-member', allot_organization: 'o1' })],
    ['a service-admin with an organization', (k) => sign(k, { allot_role: 'service-admin', allot_organization: 'o1' })],
    ['an organization that is not a string', (k) => sign(k, { allot_role: 'org-admin', allot_organization: 1 })],
    ['no subject', (k) => sign(k, orgAdmin, { subject: null })],
    // A claim that is present but not an id must refuse the token: read as "no organization",
    // it would make a service (or reader) principal of every tenant.
    ['a service whose organization claim is an array', (k) => sign(k, { allot_role: 'service', allot_organization: ['o1'] })],
    ['a service whose organization claim is a number', (k) => sign(k, { allot_role: 'service', allot_organization: 7 })],
    ['a service whose organization claim is an object', (k) => sign(k, { allot_role: 'service', allot_organization: { id: 'o1' } })],
    ['a service whose organization claim is null', (k) => sign(k, { allot_role: 'service', allot_organization: null })],
    ['a service whose organization claim is empty', (k) => sign(k, { allot_role: 'service', allot_organization: '' })],
    ['an organization claim that is no id', (k) => sign(k, { allot_role: 'org-admin', allot_organization: 'O1' })],
    ['a project claim that is a number', (k) => sign(k, { allot_role: 'project-member', allot_organization: 'o1', allot_project: 1 })],
    ['a project claim that is an array', (k) => sign(k, { allot_role: 'reader', allot_organization: 'o1', allot_project: ['p1'] })],
    ['a subject with a control character', (k) => sign(k, orgAdmin, { subject: 'ali\u0000ce' })],
    ['a subject with a lone surrogate', (k) => sign(k, orgAdmin, { subject: 'ali\ud800ce' })],
    ['no expiry (exp) claim', (k) => sign(k, orgAdmin, { expiresAt: null })],
    [
      'an unsigned token (alg none)',
      async () => new UnsecuredJWT({ ...orgAdmin, allot_role: 'service-admin', allot_organization: undefined })
        .setIssuer(issuer).setSubject('mallory').setIssuedAt().setExpirationTime('5m').encode(),
    ],
    [
      'a tampered payload (org-admin raised to service-admin)',
      async (k) => {
        const [header, , signature] = (await sign(k, orgAdmin)).split('.');
        const payload = Buffer.from(
          JSON.stringify({ allot_role: 'service-admin', sub: 'alice', iss: issuer, exp: nowSeconds() + 300 }),
        ).toString('base64url');
        return `${header}.${payload}.${signature}`;
      },
    ],
    ['three dots of garbage', async () => 'aaa.bbb.ccc'],
  ];

  it.each(refused)('refuses %s with 401', async (_name, make) => {
    const token = await make(keys);
    const before = (await as(app, adminToken, 'GET', '/v1/organizations/o1/projects/p1/allocations')).json.items.length;
    for (const [method, url, body] of [
      ['GET', '/v1/organizations/o1/quotas', undefined],
      ['GET', '/v1/organizations', undefined],
      ['POST', '/v1/organizations/o1/projects/p1/allocations', allocationBody(`forged-${Math.random()}`)],
    ] as const) {
      const response = await as(app, token, method, url, body);
      expectProblem(response, 'unauthorized');
      expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    const after = (await as(app, adminToken, 'GET', '/v1/organizations/o1/projects/p1/allocations')).json.items.length;
    expect(after).toBe(before);
  });

  it('claim names are configurable: groups_role, groups_org, groups_project', async () => {
    const token = await sign(keys, { groups_role: 'org-admin', groups_org: 'o2' }, { subject: 'carol' });
    const quotas = await as(renamed, token, 'GET', '/v1/organizations/o2/quotas');
    expect(quotas.status, quotas.text).toBe(200);
    expectProblem(await as(renamed, token, 'GET', '/v1/organizations/o1/quotas'), 'not-found');
    const created = await as(renamed, token, 'POST', '/v1/organizations/o2/projects/p1/allocations', allocationBody('vm-c'));
    expect(created.status, created.text).toBe(201);
    expect(created.json.createdBy).toBe('jwt:carol');

    const member = await sign(keys, { groups_role: 'project-member', groups_org: 'o2', groups_project: 'p2' });
    expect((await as(renamed, member, 'GET', '/v1/organizations/o2/projects/p2/allocations')).status).toBe(200);
    expectProblem(await as(renamed, member, 'GET', '/v1/organizations/o2/projects/p1/allocations'), 'not-found');

    // The default claim names mean nothing to this verifier, and the new ones nothing to the default.
    expectProblem(await as(renamed, await sign(keys, orgAdmin), 'GET', '/v1/organizations/o1/quotas'), 'unauthorized');
    expectProblem(await as(app, token, 'GET', '/v1/organizations/o2/quotas'), 'unauthorized');
  });

  it('with an audience configured, only tokens for that audience pass', async () => {
    expectProblem(await as(audienced, await sign(keys, orgAdmin), 'GET', '/v1/organizations/o1/quotas'), 'unauthorized');
    expectProblem(
      await as(audienced, await sign(keys, orgAdmin, { audience: 'another-api' }), 'GET', '/v1/organizations/o1/quotas'),
      'unauthorized',
    );
    const ok = await as(audienced, await sign(keys, orgAdmin, { audience: 'allot-api' }), 'GET', '/v1/organizations/o1/quotas');
    expect(ok.status, ok.text).toBe(200);
  });

  it('a token without exp passes only where the operator allows it', async () => {
    const token = await sign(keys, orgAdmin, { expiresAt: null });
    expectProblem(await as(app, token, 'GET', '/v1/organizations/o1/quotas'), 'unauthorized');
    const allowed = await as(lenient, token, 'GET', '/v1/organizations/o1/quotas');
    expect(allowed.status, allowed.text).toBe(200);
    // Allowing no exp does not widen anything else: a malformed claim is still refused.
    const widened = await sign(keys, { allot_role: 'service', allot_organization: ['o1'] }, { expiresAt: null });
    expectProblem(await as(lenient, widened, 'GET', '/v1/organizations/o2/quotas'), 'unauthorized');
  });

  it('a service with no organization claim serves every tenant, as documented', async () => {
    const token = await sign(keys, { allot_role: 'service' });
    expect((await as(app, token, 'GET', '/v1/organizations/o2/quotas')).status).toBe(200);
  });

  it.each(['bearer', 'BEARER', 'BeArEr', 'Bearer  '])('the scheme "%s" is read without regard to case (RFC 7235)', async (scheme) => {
    const token = await sign(keys, orgAdmin);
    const response = await as(app, token, 'GET', '/v1/organizations/o1/quotas', undefined, scheme);
    expect(response.status, response.text).toBe(200);
    expect((await as(app, adminToken, 'GET', '/v1/organizations/o2/quotas', undefined, scheme)).status).toBe(200);
  });

  it('the admin token and API tokens still work next to JWTs', async () => {
    expect((await as(app, adminToken, 'GET', '/v1/organizations/o2/quotas')).status).toBe(200);
    const made = await as(app, adminToken, 'POST', '/v1/tokens', { role: 'reader', organization: 'o2' });
    expect(made.status).toBe(201);
    expect((await as(app, made.json.token, 'GET', '/v1/organizations/o2/quotas')).status).toBe(200);
  });
});
