// Goal: traces and request logs as docs/operations.md describes them. With a tracer provider,
// a request's span is the child of the caller's W3C traceparent; its decision's span is the
// request span's child, the group commit's span the decision's (or linked to it, when another
// decision of the group parents it), and the database transactions the group's or the
// request's children, on both engines; no span carries SQL or a parameter. Every log line of a
// request carries its reqId and trace id, and a refusal for quota logs its violations at info.
// Without a provider nothing is recorded, no provider is installed, and logs carry no trace id.
// Method: the app through `inject` with a logger writing to an array; an SDK provider with an
// in-memory exporter registered for the "on" tests and removed after them; concurrent library
// calls, each under its own span, to put several decisions in one group.
import { randomBytes } from 'node:crypto';
import { context, propagation, ProxyTracerProvider, trace, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { tracer, tracingOff } from '../../src/telemetry/tracer.js';
import { exportTraces, tracesRequested } from '../../src/telemetry/serve.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';

const adminToken = 'tracing-test-admin-token';
const allocations = '/v1/organizations/acme/projects/web/allocations';
const allocationsRoute = '/v1/organizations/:organization/projects/:project/allocations';

interface Harness {
  app: FastifyInstance;
  test: TestLedger;
  lines: Record<string, any>[];
}

async function open(engine: (typeof engines)[number]): Promise<Harness> {
  const test = await openTestLedger(engine);
  // Set up by library calls with no span around them: they make no trace.
  await test.ledger.putKind('gpus', { displayName: 'GPUs' });
  await test.ledger.putOrganization('acme', {});
  await test.ledger.putProject('acme', 'web', {});
  await test.ledger.setQuotaSet('acme', [{ kind: 'gpus', quantity: '10' }]);
  const lines: Record<string, any>[] = [];
  const stream = { write: (line: string) => void lines.push(JSON.parse(line)) };
  const app = await buildApp({ ledger: test.ledger, adminToken, logger: { level: 'info', stream } });
  return { app, test, lines };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** A caller's span context, as a traceparent header. */
function caller(sampled = true) {
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? '01' : '00'}` };
}

async function post(app: FastifyInstance, traceparent: string | undefined, id: string, committed: number) {
  return app.inject({
    method: 'POST',
    url: allocations,
    headers: { authorization: `Bearer ${adminToken}`, ...(traceparent ? { traceparent } : {}) },
    payload: { resource: { kind: 'vm', id }, allocations: [{ kind: 'gpus', committed }] },
  });
}

describe(`tracing off (no provider registered), on ${engines[0]}`, () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await open(engines[0]!);
  });
  afterAll(async () => {
    await harness.app.close();
    await harness.test.close();
  });

  it('installs no provider without an OTLP endpoint, records nothing, and logs no trace id', async () => {
    expect(tracesRequested({})).toBe(false);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' })).toBe(true);
    expect(await exportTraces(harness.app, {})).toBeUndefined();
    const provider = trace.getTracerProvider() as ProxyTracerProvider;
    expect(provider.getDelegate().constructor.name).toBe('NoopTracerProvider');
    expect(tracingOff()).toBe(true);
    expect(tracer().startSpan('probe').isRecording()).toBe(false);

    const { traceId, traceparent } = caller();
    expect((await post(harness.app, traceparent, 'vm-off', 1)).statusCode).toBe(201);
    const ofRequest = harness.lines.filter((line) => line.reqId !== undefined);
    expect(ofRequest.map((line) => line.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
    for (const line of ofRequest) expect(line).not.toHaveProperty('trace_id');
    expect(JSON.stringify(harness.lines)).not.toContain(traceId);
  });
});

describe('tracing on (a provider with an in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(() => {
    provider.register({ propagator: new W3CTraceContextPropagator() });
    expect(tracingOff()).toBe(false);
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  const ofTrace = (traceId: string) => exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  const named = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);
  const childrenOf = (spans: ReadableSpan[], parent: ReadableSpan) =>
    spans.filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId);

  describe.each(engines)('on %s', (engine) => {
    let harness: Harness;
    const system = engine === 'postgres' ? 'postgresql' : 'sqlite';
    beforeAll(async () => {
      harness = await open(engine);
      exporter.reset();
    });
    afterAll(async () => {
      await harness.app.close();
      await harness.test.close();
    });

    it('request → decision → group commit → database transaction, in the caller\'s trace', async () => {
      const { traceId, spanId, traceparent } = caller();
      expect((await post(harness.app, traceparent, 'vm-1', 2)).statusCode).toBe(201);
      const spans = ofTrace(traceId);

      const [request, ...more] = named(spans, `POST ${allocationsRoute}`);
      expect(more).toEqual([]);
      expect(request!.parentSpanContext?.spanId).toBe(spanId);
      expect(request!.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.route': allocationsRoute,
        'http.response.status_code': 201,
        'url.path': allocations,
      });

      const [decision] = childrenOf(spans, request!).filter((span) => span.name === 'decide allocation.create');
      expect(decision).toBeDefined();
      expect(decision!.attributes).toMatchObject({
        'allot.organization': 'acme',
        'allot.project': 'web',
        'allot.kinds': ['gpus'],
        'allot.operations': 1,
        'allot.outcome': 'applied',
        'allot.group.decisions': 1,
      });

      const [group] = childrenOf(spans, decision!).filter((span) => span.name === 'group commit');
      expect(group!.attributes).toMatchObject({ 'allot.group.decisions': 1, 'allot.group.operations': 1 });
      const transactions = childrenOf(spans, group!).filter((span) => span.name === 'db.transaction');
      expect(transactions.length).toBeGreaterThanOrEqual(1);
      for (const transaction of transactions) {
        expect(transaction.attributes).toMatchObject({ 'db.system': system, 'db.system.name': system, 'allot.db.access': 'write' });
      }

      // No statement, and no value bound to one (the resource id), in any attribute.
      const attributes = JSON.stringify(spans.map((span) => span.attributes));
      expect(attributes).not.toMatch(/\b(select|insert|update|delete)\b/i);
      expect(attributes).not.toContain('vm-1');
    });

    it("a read's transaction is the child of its request", async () => {
      const { traceId, traceparent } = caller();
      const response = await harness.app.inject({
        method: 'GET',
        url: '/v1/organizations/acme/quotas',
        headers: { authorization: `Bearer ${adminToken}`, traceparent },
      });
      expect(response.statusCode).toBe(200);
      const spans = ofTrace(traceId);
      const [request] = named(spans, 'GET /v1/organizations/:organization/quotas');
      const reads = childrenOf(spans, request!).filter((span) => span.name === 'db.transaction');
      expect(reads.length).toBeGreaterThanOrEqual(1);
      for (const read of reads) expect(read.attributes).toMatchObject({ 'db.system': system, 'allot.db.access': 'read' });
    });

    it('a refusal for quota: the outcome and problem on the spans, the violations logged at info with the trace id', async () => {
      const { traceId, traceparent } = caller();
      const response = await post(harness.app, traceparent, 'vm-big', 100);
      expect(response.statusCode).toBe(409);
      const spans = ofTrace(traceId);
      const [request] = named(spans, `POST ${allocationsRoute}`);
      expect(request!.attributes).toMatchObject({ 'http.response.status_code': 409, 'allot.problem': 'quota-exceeded' });
      const [decision] = childrenOf(spans, request!);
      expect(decision!.attributes).toMatchObject({ 'allot.outcome': 'refused', 'allot.problem': 'quota-exceeded', 'allot.violations': 1 });

      const denial = harness.lines.find((line) => line.trace_id === traceId && line.msg === 'refused: quota exceeded');
      expect(denial).toMatchObject({ level: 30, problem: 'quota-exceeded', span_id: request!.spanContext().spanId });
      expect(denial!.violations).toEqual([expect.objectContaining({ kind: 'gpus', scope: expect.any(String), requested: 100 })]);
    });

    it('every log line of a request carries its reqId and its trace id', async () => {
      const callers = [caller(), caller(), caller()];
      await Promise.all(callers.map(({ traceparent }, i) => post(harness.app, traceparent, `vm-log-${i}`, 1)));
      await harness.app.inject({ method: 'GET', url: '/v1/no-such-route', headers: { traceparent: callers[0]!.traceparent } });
      for (const { traceId } of callers) {
        const reqIds = new Set(harness.lines.filter((line) => line.trace_id === traceId).map((line) => line.reqId));
        expect(reqIds.size).toBeGreaterThanOrEqual(1);
        for (const reqId of reqIds) {
          const lines = harness.lines.filter((line) => line.reqId === reqId);
          expect(lines.map((line) => line.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
          for (const line of lines) expect(line.trace_id).toBe(traceId);
        }
      }
      for (const line of harness.lines.filter((line) => line.reqId !== undefined)) expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    });

    it("decisions of one group: the group's span is one decision's child and every other decision links to it", async () => {
      const parents: Span[] = [];
      const answers = Array.from({ length: 4 }, (_, i) => {
        const span = tracer().startSpan(`caller ${i}`);
        parents.push(span);
        return context.with(trace.setSpan(context.active(), span), () =>
          harness.test.ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: `vm-group-${i}` }, allocations: [{ kind: 'gpus', committed: 1 }] }),
        );
      });
      await Promise.all(answers);
      for (const span of parents) span.end();

      const decisions = parents.map((parent) => {
        const [decision] = childrenOf(ofTrace(parent.spanContext().traceId), exporter.getFinishedSpans().find((s) => s.spanContext().spanId === parent.spanContext().spanId)!);
        return decision!;
      });
      const groups = exporter.getFinishedSpans().filter((span) => span.name === 'group commit');
      const groupOf = (decision: ReadableSpan) =>
        groups.find(
          (group) =>
            group.parentSpanContext?.spanId === decision.spanContext().spanId ||
            decision.links.some((link) => link.context.spanId === group.spanContext().spanId),
        );
      const [first, ...others] = decisions;
      const group = groupOf(first!)!;
      expect(group.attributes['allot.group.decisions']).toBe(4);
      for (const decision of others) expect(groupOf(decision)).toBe(group);
      // The group's span is the child of one decision and links to the three others.
      const members = [group.parentSpanContext!.spanId, ...group.links.map((link) => link.context.spanId)].sort();
      expect(members).toEqual(decisions.map((decision) => decision.spanContext().spanId).sort());
      expect(childrenOf(exporter.getFinishedSpans(), group).some((span) => span.name === 'db.transaction')).toBe(true);
    });

    it('an unsampled caller (flags 00) gets no recorded span, and its trace id still in the logs', async () => {
      const { traceId, traceparent } = caller(false);
      expect((await post(harness.app, traceparent, 'vm-unsampled', 1)).statusCode).toBe(201);
      expect(ofTrace(traceId)).toEqual([]);
      expect(harness.lines.some((line) => line.trace_id === traceId && line.msg === 'request completed')).toBe(true);
    });
  });
});
