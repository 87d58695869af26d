// Goal: `allot serve`'s logs and traces, end to end. (1) With OTEL_EXPORTER_OTLP_ENDPOINT set it
// exports over OTLP/HTTP, and what it buffered reaches the collector when it is stopped: the
// request's span with the caller's trace id and parent, its decision and the database
// transaction under it, from a resource named allot. (2) Every log line of a request carries its
// reqId and trace id, and a refusal for quota logs its violations at info. (3) No credential ever
// reaches the log, even at debug: not the admin token, not an API token (created, used, revoked,
// then refused), not a region host's token (sent in a PUT body, then used by the limits
// controller to call the host), not a JWT (accepted, or forged and refused), through a workload
// that also has a malformed body quoting a token, an unknown path and bad bearers. (4) The
// logger censors what it is handed, should code ever hand it a secret.
// Method: one real `allot serve --controller` per engine (ALLOT_LOG_LEVEL=debug, stderr kept
// whole), with a JWKS file for JWTs, a fake host service and a fake OTLP collector (node:http on
// 127.0.0.1, recording what they receive), and a batch delay far longer than the test, so only
// the flush at SIGTERM can deliver the spans; the log is read after the exit, and every secret
// is searched for in it, whole and by its unguessable part. (4) is a Fastify logger with the
// server's options writing to an array.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerOptions, scrubber } from '../../src/telemetry/logging.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { receiver, request, serve, type Receiver } from './telemetry-support.js';

const issuer = 'https://issuer.test';
const allocationRoute = 'POST /v1/organizations/:organization/projects/:project/allocations';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

const attribute = (span: OtlpSpan, key: string) => {
  const value = span.attributes?.find((entry) => entry.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
};

describe.each(engines)('allot serve, at debug, exporting traces, on %s', (engine) => {
  let database: TestDatabase;
  let host: Receiver;
  let collector: Receiver;
  let dir: string;
  /** What the run left: its log, the caller's trace, and the secrets it handled. */
  const run = { log: '', traceId: randomBytes(16).toString('hex'), parentId: randomBytes(8).toString('hex'), secrets: {} as Record<string, string> };

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    host = await receiver((call) => (call.url === '/admin/trackers' ? { status: 200, body: { items: [] } } : { status: 404, body: {} }));
    collector = await receiver();
    dir = mkdtempSync(join(tmpdir(), 'allot-telemetry-'));
    await workload();
  });
  afterAll(async () => {
    await host.close();
    await collector.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function workload(): Promise<void> {
    const adminToken = `admin-${randomBytes(24).toString('hex')}`;
    const hostToken = `host-${randomBytes(24).toString('hex')}`;
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    const jwt = await new SignJWT({ allot_role: 'reader', allot_organization: 'acme' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const forged = `${jwt.split('.').slice(0, 2).join('.')}.${randomBytes(64).toString('base64url')}`;

    const server = await serve(
      ['--db', database.url, '--jwt-issuer', issuer, '--jwt-jwks', jwks, '--controller', '--region', 'eu-1', '--controller-interval', '100'],
      { ALLOT_ADMIN_TOKEN: adminToken, ALLOT_LOG_LEVEL: 'debug', OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '600000' },
    );
    const apiTokens: string[] = [];
    try {
      const as = (token: string) => (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
        request(server.url, token, method, path, body, headers);
      const admin = as(adminToken);
      expect((await admin('PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs' })).status).toBe(201);
      expect((await admin('PUT', '/v1/organizations/acme', {})).status).toBe(201);
      expect((await admin('PUT', '/v1/organizations/acme/projects/web', {})).status).toBe(201);
      expect((await admin('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: '4' }] })).status).toBe(200);

      // API tokens: created (the answer holds them), used, revoked, then refused.
      const member = await admin('POST', '/v1/tokens', { role: 'project-member', organization: 'acme', project: 'web' });
      const reader = await admin('POST', '/v1/tokens', { role: 'reader', organization: 'acme' });
      expect([member.status, reader.status]).toEqual([201, 201]);
      apiTokens.push(member.json.token, reader.json.token);
      const allocate = (committed: number, id: string) =>
        as(member.json.token)('POST', '/v1/organizations/acme/projects/web/allocations', { resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed }] });
      const traced = await as(member.json.token)(
        'POST',
        '/v1/organizations/acme/projects/web/allocations',
        { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 2 }] },
        { traceparent: `00-${run.traceId}-${run.parentId}-01` },
      );
      expect(traced.status).toBe(201);
      expect((await allocate(9, 'vm-2')).status).toBe(409);
      expect((await as(reader.json.token)('GET', '/v1/whoami')).status).toBe(200);
      expect((await admin('DELETE', `/v1/tokens/${reader.json.id}`)).status).toBe(204);
      expect((await as(reader.json.token)('GET', '/v1/whoami')).status).toBe(401);
      expect((await as(`allot_${randomBytes(32).toString('base64url')}`)('GET', '/v1/whoami')).status).toBe(401);

      // A region's host with its token; the controller calls the host with it.
      expect((await admin('PUT', '/v1/regions/eu-1', {})).status).toBe(201);
      expect((await admin('PUT', '/v1/regions/eu-1/hosts/compute', { endpoint: host.url, token: hostToken })).status).toBe(200);
      // A body that does not parse, quoting the host token, and one of the wrong shape.
      expect((await admin('PUT', '/v1/regions/eu-1/hosts/compute', `{"endpoint": "${host.url}", "token": "${hostToken}"`)).status).toBe(400);
      expect((await admin('PUT', '/v1/regions/eu-1/hosts/compute', { endpoint: host.url, token: hostToken, extra: hostToken })).status).toBe(400);

      // JWTs: accepted, and forged.
      expect((await as(jwt)('GET', '/v1/whoami')).status).toBe(200);
      expect((await as(forged)('GET', '/v1/whoami')).status).toBe(401);
      // The admin token where it is wrong, and a path that is no route.
      expect((await as(`${adminToken}x`)('GET', '/v1/whoami')).status).toBe(401);
      expect((await admin('GET', `/v1/no-such-route?token=${'x'.repeat(8)}`)).status).toBe(404);

      const deadline = performance.now() + 10_000;
      while (!host.received.some((call) => call.headers.authorization === `Bearer ${hostToken}`) && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(host.received.some((call) => call.headers.authorization === `Bearer ${hostToken}`)).toBe(true);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    run.log = server.log();

    run.secrets = {
      'the admin token': adminToken,
      'the admin token, its random part': adminToken.slice('admin-'.length),
      'the host token': hostToken,
      'the host token, its random part': hostToken.slice('host-'.length),
      'the JWT': jwt,
      "the JWT's signature": jwt.split('.')[2]!,
      "the forged JWT's signature": forged.split('.')[2]!,
      ...Object.fromEntries(apiTokens.flatMap((token, i) => [[`API token ${i}`, token], [`API token ${i}, its random part`, token.slice('allot_'.length)]])),
    };
    expect(apiTokens).toHaveLength(2);
  }

  it("exports the request, decision and database spans of the caller's trace over OTLP/HTTP, flushed at SIGTERM", () => {
    const posts = collector.received.filter((entry) => entry.method === 'POST' && entry.url === '/v1/traces');
    expect(posts.length).toBeGreaterThan(0);
    const resources = posts.flatMap((post) => JSON.parse(post.body).resourceSpans);
    for (const resource of resources) {
      expect(resource.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'allot' } });
    }
    const spans: OtlpSpan[] = resources.flatMap((resource) => resource.scopeSpans.flatMap((scope: { spans: OtlpSpan[] }) => scope.spans));
    const ofTrace = spans.filter((span) => span.traceId === run.traceId);
    const byId = new Map(ofTrace.map((span) => [span.spanId, span]));
    const requestSpan = ofTrace.find((span) => span.name === allocationRoute)!;
    expect(requestSpan.parentSpanId).toBe(run.parentId);
    expect(attribute(requestSpan, 'http.response.status_code')).toBe(201);
    const decision = ofTrace.find((span) => span.name === 'decide allocation.create')!;
    expect(decision.parentSpanId).toBe(requestSpan.spanId);
    expect(attribute(decision, 'allot.outcome')).toBe('applied');
    const transaction = ofTrace.find((span) => span.name === 'db.transaction' && attribute(span, 'allot.db.access') === 'write')!;
    expect(attribute(transaction, 'db.system')).toBe(engine === 'postgres' ? 'postgresql' : 'sqlite');
    // The transaction descends from the decision (through the group commit's span).
    let ancestor = byId.get(transaction.parentSpanId!);
    while (ancestor !== undefined && ancestor !== decision) ancestor = byId.get(ancestor.parentSpanId ?? '');
    expect(ancestor).toBe(decision);
    // Requests sent without a traceparent start traces of their own.
    expect(spans.filter((span) => span.name === 'PUT /v1/resource-kinds/:kind' && !span.parentSpanId)).toHaveLength(1);
  });

  it('logs every request with its reqId and trace id, and the refusal for quota with its violations', () => {
    const lines = run.log.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, any>);
    const ofRequests = lines.filter((line) => line.reqId !== undefined);
    expect(ofRequests.filter((line) => line.msg === 'incoming request').length).toBeGreaterThanOrEqual(18);
    for (const line of ofRequests) expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(lines.filter((line) => line.trace_id === run.traceId).map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
    expect(lines.find((line) => line.msg === 'refused: quota exceeded')).toMatchObject({ level: 30, violations: [expect.objectContaining({ kind: 'gpus' })] });
  });

  it('leaves no admin, API, host token or JWT in the log', () => {
    expect(Object.keys(run.secrets).length).toBe(11);
    const found = Object.entries(run.secrets).filter(([, secret]) => run.log.includes(secret)).map(([name]) => name);
    expect(found).toEqual([]);
  });
});

describe("the server's logger, should a secret be handed to it", () => {
  it('censors headers, bodies and token fields by path, and credential-shaped text anywhere', async () => {
    const written: string[] = [];
    const admin = 'an-admin-token-with "quotes"';
    const logger = Fastify({ logger: loggerOptions('debug', { write: (line: string) => void written.push(line) }, [admin]) }).log;
    const apiToken = `allot_${'a'.repeat(43)}`;
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    logger.info({ req: { headers: { authorization: 'Bearer opaque-1', cookie: 'session=opaque-2' }, body: { token: 'opaque-3' } } }, 'a request');
    logger.info({ host: { endpoint: 'http://h', token: 'opaque-4' }, headers: { authorization: 'opaque-5' } }, 'a host');
    logger.error({ err: Object.assign(new Error(`refused ${apiToken} and ${jwt}`), { rawPacket: Buffer.from('Authorization: opaque-6') }) }, `Bearer opaque-7, ${admin}`);
    const log = written.join('');
    for (const secret of ['opaque-1', 'opaque-2', 'opaque-3', 'opaque-4', 'opaque-5', 'opaque-6', 'opaque-7', apiToken, jwt, admin, JSON.stringify(admin).slice(1, -1)]) {
      expect(log).not.toContain(secret);
    }
    expect(log).toContain('a request');
    expect(log).toContain('http://h');
    expect(scrubber()('nothing secret here: allot_short, eyJ.')).toBe('nothing secret here: allot_short, eyJ.');
  });
});
