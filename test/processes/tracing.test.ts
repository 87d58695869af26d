// Goal: `allot serve` exports its traces over OTLP/HTTP to the endpoint OTEL_EXPORTER_OTLP_ENDPOINT
// names, and what the process buffered reaches it when it is stopped: the request's span with
// the caller's trace id and parent, its decision and the database transaction under it, from a
// resource named allot, on both engines.
// Method: a tiny collector (node:http on 127.0.0.1 recording POST /v1/traces, OTLP/JSON), the
// server started with the endpoint and a batch delay far longer than the test, so only the
// flush at SIGTERM can deliver the spans; one allocation sent with a traceparent.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { receiver, request, serve, type Receiver } from './telemetry-support.js';

const adminToken = 'tracing-process-admin-token-0123456789';

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

describe.each(engines)('allot serve exports traces over OTLP/HTTP on %s', (engine) => {
  let database: TestDatabase;
  let collector: Receiver;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    collector = await receiver();
  });
  afterAll(async () => {
    await collector.close();
    await database.drop();
  });

  it('the request, decision and database spans reach the collector, in the caller\'s trace', async () => {
    const server = await serve(['--db', database.url], {
      ALLOT_ADMIN_TOKEN: adminToken,
      ALLOT_LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    const traceId = randomBytes(16).toString('hex');
    const parentId = randomBytes(8).toString('hex');
    try {
      expect((await request(server.url, adminToken, 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs' })).status).toBe(201);
      expect((await request(server.url, adminToken, 'PUT', '/v1/organizations/acme', {})).status).toBe(201);
      expect((await request(server.url, adminToken, 'PUT', '/v1/organizations/acme/projects/web', {})).status).toBe(201);
      const created = await request(
        server.url,
        adminToken,
        'POST',
        '/v1/organizations/acme/projects/web/allocations',
        { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpus', committed: 1 }] },
        { traceparent: `00-${traceId}-${parentId}-01` },
      );
      expect(created.status).toBe(201);
    } finally {
      expect(await server.stop()).toBe(0);
    }

    const posts = collector.received.filter((entry) => entry.method === 'POST' && entry.url === '/v1/traces');
    expect(posts.length).toBeGreaterThan(0);
    const documents = posts.map((post) => JSON.parse(post.body));
    const resources = documents.flatMap((document) => document.resourceSpans);
    for (const resource of resources) {
      expect(resource.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'allot' } });
    }
    const spans: OtlpSpan[] = resources.flatMap((resource) => resource.scopeSpans.flatMap((scope: { spans: OtlpSpan[] }) => scope.spans));
    const ofTrace = spans.filter((span) => span.traceId === traceId);
    const byId = new Map(ofTrace.map((span) => [span.spanId, span]));
    const route = 'POST /v1/organizations/:organization/projects/:project/allocations';
    const requestSpan = ofTrace.find((span) => span.name === route)!;
    expect(requestSpan.parentSpanId).toBe(parentId);
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
    // Setting up the kind, organization and project made traces of their own, with no parent.
    expect(spans.filter((span) => span.name === 'PUT /v1/resource-kinds/:kind' && !span.parentSpanId)).toHaveLength(1);
  });
});
