// Goal: a long-lived response stops serving a principal within a few seconds of its
// credential ending (revoked here or by another process, an API token's expiry, a JWT's
// `exp`), no principal can take every stream of a process, and an idle stream costs no reads.
// Method: per engine, a real listening app; clients read `…/watch` with fetch and parse its
// events. A reader token sees an allocation's entry, is revoked (through the API, or through a
// second ledger on the same database, as `allot token revoke` in another process would), and
// its stream must end with `event: end` within the bound while an allocation made after the
// revocation never reaches it. Expiring tokens must end at their expiry, not before. The
// per-principal bound is set to 3: a fourth stream of one token is 503 while another token
// still streams. Idle streams are counted against the ledger's journal reads.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { Authenticator } from '../../src/api/auth.js';
import { jwtVerifier } from '../../src/api/jwt.js';
import { streamRecheckIntervalMs, authCacheTtlMs } from '../../src/domain/constants.js';
import { openLedger, type Ledger } from '../../src/index.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken } from './harness.js';

const issuer = 'https://issuer.test';

interface Stream {
  status: number;
  revisions: number[];
  events: string[];
  /** Resolves with the time (ms) the stream ended. */
  ended: Promise<number>;
  close(): void;
}

/** Opens a watch and reads it in the background, recording each event. */
async function watch(address: string, token: string, organization = 'acme'): Promise<Stream> {
  const controller = new AbortController();
  const response = await fetch(`${address}/v1/organizations/${organization}/watch?after=0`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const stream: Stream = { status: response.status, revisions: [], events: [], ended: Promise.resolve(0), close: () => controller.abort() };
  if (response.status !== 200) {
    await response.text();
    return stream;
  }
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  stream.ended = (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          if (event) stream.events.push(event);
          const id = /^id: (\d+)$/m.exec(frame)?.[1];
          if (event === 'journal' && id) stream.revisions.push(Number(id));
        }
      }
    } catch {
      // Aborted by the test.
    }
    return Date.now();
  })();
  return stream;
}

const eventually = async (check: () => boolean, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/** How long after a credential ends its streams may still be served. */
const boundMs = streamRecheckIntervalMs + authCacheTtlMs + 1000;

describe.each(engines)('streams end with their credentials on %s', (engine) => {
  let test: TestLedger;
  let app: FastifyInstance;
  let address: string;
  let keysDir: string;
  let privateKey: CryptoKey | import('jose').KeyLike;

  const allocate = (id: string) =>
    test.ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id }, allocations: [{ kind: 'cpu', committed: 1 }] });

  const token = async (expiresAt?: string) =>
    (await test.ledger.createToken({ role: 'reader', organization: 'acme', expiresAt: expiresAt ?? null })).token;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    await test.ledger.putKind('cpu', { displayName: 'CPU' });
    await test.ledger.putOrganization('acme', {});
    await test.ledger.putProject('acme', 'web', {});
    const keys = await generateKeyPair('RS256');
    privateKey = keys.privateKey;
    keysDir = mkdtempSync(join(tmpdir(), 'allot-jwt-'));
    const jwks = join(keysDir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256' }] }));
    app = await buildApp({ ledger: test.ledger, adminToken, jwt: jwtVerifier({ issuer, jwks }), watchersPerPrincipalMax: 3 });
    address = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app?.close();
    await test?.close();
    if (keysDir) rmSync(keysDir, { recursive: true, force: true });
  });

  it('a token revoked through the API ends its stream, and no later entry reaches it', async () => {
    const reader = await token();
    const stream = await watch(address, reader);
    expect(stream.status).toBe(200);
    await allocate('before-revoke');
    await eventually(() => stream.revisions.length === 1);
    const id = (await test.ledger.listTokens()).find((t) => t.role === 'reader' && t.revokedAt === null)!.id;
    const revoked = await fetch(`${address}/v1/tokens/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
    expect(revoked.status).toBe(204);
    const revokedAt = Date.now();
    await allocate('after-revoke');
    const endedAt = await stream.ended;
    expect(endedAt - revokedAt).toBeLessThan(boundMs);
    expect(stream.events.at(-1)).toBe('end');
    expect(stream.revisions).toEqual([1]);
    // And it cannot come back.
    expect((await watch(address, reader)).status).toBe(401);
  });

  it('a token revoked by another process ends its stream within the bound', async () => {
    const reader = await token();
    const stream = await watch(address, reader);
    expect(stream.status).toBe(200);
    const elsewhere: Ledger = await openLedger({ db: test.database.url });
    try {
      const id = (await elsewhere.listTokens()).find((t) => t.role === 'reader' && t.revokedAt === null)!.id;
      await elsewhere.revokeToken(id);
    } finally {
      await elsewhere.close();
    }
    const revokedAt = Date.now();
    const endedAt = await stream.ended;
    expect(endedAt - revokedAt).toBeLessThan(boundMs);
    expect(stream.events.at(-1)).toBe('end');
  });

  it('an API token and a JWT that expire end their streams at their expiry, not before', async () => {
    const expiresAtMs = Date.now() + 2500;
    const apiToken = await token(new Date(expiresAtMs).toISOString());
    const jwt = await new SignJWT({ allot_role: 'reader', allot_organization: 'acme' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setSubject('erin')
      .setExpirationTime(Math.ceil(expiresAtMs / 1000))
      .sign(privateKey);
    const jwtExpiresAtMs = Math.ceil(expiresAtMs / 1000) * 1000;
    const [byToken, byJwt] = await Promise.all([watch(address, apiToken), watch(address, jwt)]);
    expect([byToken.status, byJwt.status]).toEqual([200, 200]);
    const [tokenEnded, jwtEnded] = await Promise.all([byToken.ended, byJwt.ended]);
    expect(tokenEnded).toBeGreaterThanOrEqual(expiresAtMs - 50);
    expect(tokenEnded - expiresAtMs).toBeLessThan(1500);
    expect(jwtEnded).toBeGreaterThanOrEqual(jwtExpiresAtMs - 50);
    expect(jwtEnded - jwtExpiresAtMs).toBeLessThan(1500);
    expect(byToken.events.at(-1)).toBe('end');
    expect(byJwt.events.at(-1)).toBe('end');
  });

  it('one principal holds at most its share of streams while another still streams', async () => {
    const greedy = await token();
    const other = await token();
    const held = await Promise.all([1, 2, 3].map(() => watch(address, greedy)));
    expect(held.map((s) => s.status)).toEqual([200, 200, 200]);
    const refused = await fetch(`${address}/v1/organizations/acme/watch`, { headers: { authorization: `Bearer ${greedy}` } });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ type: '/problems/service-unavailable', detail: expect.stringContaining('per principal') });
    const theirs = await watch(address, other);
    expect(theirs.status).toBe(200);
    const revision = (await allocate(`shared-${engine}`)).generation;
    expect(revision).toBe(1);
    await eventually(() => theirs.revisions.length > 0 && held.every((s) => s.revisions.length > 0));
    // Closing one of the three frees its place.
    held[0]!.close();
    await held[0]!.ended;
    await eventually(() => true, 100);
    let again: Stream | undefined;
    for (let attempt = 0; attempt < 20 && again?.status !== 200; attempt += 1) {
      again = await watch(address, greedy);
      if (again.status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(again!.status).toBe(200);
    for (const stream of [...held, theirs, again!]) stream.close();
  });

  it('idle streams share one follower: their journal reads do not grow with their number', async () => {
    const readJournal = test.ledger.readJournal.bind(test.ledger);
    let reads = 0;
    test.ledger.readJournal = (...args: Parameters<Ledger['readJournal']>) => {
      reads += 1;
      return readJournal(...args);
    };
    try {
      const tokens = await Promise.all(Array.from({ length: 10 }, () => token()));
      const streams = (await Promise.all(tokens.flatMap((t) => [watch(address, t), watch(address, t), watch(address, t)])));
      expect(streams.every((s) => s.status === 200)).toBe(true);
      reads = 0;
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // One follower polls every 250 ms: about 8 reads in 2 s, where 30 polling streams made 240.
      expect(reads).toBeLessThan(20);
      for (const stream of streams) stream.close();
    } finally {
      test.ledger.readJournal = readJournal;
    }
  });

  it('a JWT of a project that is deleted no longer stands', async () => {
    await test.ledger.putProject('acme', 'doomed', {});
    const authenticator = new Authenticator(test.ledger, adminToken, jwtVerifier({ issuer, jwks: join(keysDir, 'jwks.json') }));
    try {
      const jwt = await new SignJWT({ allot_role: 'project-member', allot_organization: 'acme', allot_project: 'doomed' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setSubject('frank')
        .setExpirationTime('5m')
        .sign(privateKey);
      const authentication = (await authenticator.authenticate(jwt))!;
      expect(authentication.principal).toMatchObject({ role: 'project-member', project: 'doomed' });
      expect(await authentication.stillValid()).toBe(true);
      await test.ledger.deleteProject('acme', 'doomed');
      expect(await authentication.stillValid()).toBe(false);
    } finally {
      authenticator.close();
    }
  });
});
