/**
 * Requests, traced and logged. Each request has a span (kind SERVER) named `METHOD /route/pattern`
 * whose parent is the caller's W3C `traceparent` (extracted with the global propagator: none,
 * and so no parent, until a provider's propagator is registered). The span starts when Fastify
 * makes the request's logger, so the request's every log line (from "incoming request" on)
 * carries `reqId` and, when tracing is on, `trace_id` and `span_id`. The request's own work
 * runs in the span's context: its database reads and its decisions are the span's children.
 *
 * Refusals for quota (409 quota-exceeded, replayed or not) log their violations at info.
 */
import type { IncomingMessage } from 'node:http';
import { context, INVALID_SPAN_CONTEXT, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { tracer, tracingOff } from './tracer.js';

interface RequestTrace {
  span: Span;
  context: Context;
  ended: boolean;
}

/** Each request's span, by its raw request (what Fastify's logger factory is given). */
const traces = new WeakMap<IncomingMessage, RequestTrace>();

/** A request's when no provider is registered: nothing to record, nothing to end. */
const untraced: RequestTrace = { span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT), context: ROOT_CONTEXT, ended: true };

function traceOf(raw: IncomingMessage): RequestTrace {
  let found = traces.get(raw);
  if (found === undefined) {
    if (tracingOff()) return untraced;
    const parent = propagation.extract(ROOT_CONTEXT, raw.headers);
    const method = raw.method ?? 'GET';
    const span = tracer().startSpan(method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      span.setAttributes({ [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: (raw.url ?? '/').split('?', 1)[0]! });
    }
    found = { span, context: trace.setSpan(parent, span), ended: false };
    traces.set(raw, found);
  }
  return found;
}

/** The trace and span ids a request's log lines carry (none when its span is the no-op one). */
function logIds(span: Span): { trace_id: string; span_id: string } | undefined {
  const ids = span.spanContext();
  return isSpanContextValid(ids) ? { trace_id: ids.traceId, span_id: ids.spanId } : undefined;
}

/**
 * Installs the spans and the log fields of every request on `app` (before its routes and
 * hooks: its hooks run first). Returns `app`.
 */
export function withTelemetry<App extends FastifyInstance>(app: App): App {
  app.setChildLoggerFactory(function childLogger(logger, bindings, options, raw) {
    const ids = logIds(traceOf(raw as IncomingMessage).span);
    return logger.child(ids ? { ...bindings, ...ids } : bindings, options) as FastifyBaseLogger;
  });
  app.addHook('onRequest', (request, reply, done) => {
    const traced = traceOf(request.raw);
    if (traced === untraced) return done();
    const route = request.routeOptions.url;
    if (route !== undefined && traced.span.isRecording()) {
      traced.span.updateName(`${request.method} ${route}`);
      traced.span.setAttribute(ATTR_HTTP_ROUTE, route);
    }
    // The response's 'close' comes once it is sent, or once its client went away.
    reply.raw.once('close', () => end(traced, reply));
    context.with(traced.context, done);
  });
  // A body is read in the socket's callbacks, outside the request's context: what follows it
  // (validation, authorization, the handler) runs in the context again.
  app.addHook('preValidation', (request, _reply, done) => {
    const traced = traces.get(request.raw);
    return traced === undefined ? done() : context.with(traced.context, done);
  });
  app.addHook('preSerialization', (request, reply, payload, done) => {
    noteProblem(request, reply, payload);
    done(null, payload);
  });
  return app;
}

/** A problem answer names its code on the span; a refusal for quota logs its violations. */
function noteProblem(request: FastifyRequest, reply: FastifyReply, payload: unknown): void {
  if (reply.statusCode < 400 || typeof payload !== 'object' || payload === null) return;
  const { type, violations, failedOperation } = payload as { type?: unknown; violations?: unknown; failedOperation?: unknown };
  if (typeof type !== 'string' || !type.startsWith('/problems/')) return;
  const problem = type.slice('/problems/'.length);
  const span = traces.get(request.raw)?.span;
  if (span?.isRecording()) span.setAttribute('allot.problem', problem);
  if (problem === 'quota-exceeded') {
    const replayed = reply.getHeader('idempotent-replayed') === 'true';
    request.log.info(
      { problem, violations, ...(failedOperation === undefined ? {} : { failedOperation }), ...(replayed ? { replayed } : {}) },
      'refused: quota exceeded',
    );
  }
}

function end(traced: RequestTrace, reply: FastifyReply): void {
  if (traced.ended) return;
  traced.ended = true;
  const { span } = traced;
  if (!reply.raw.writableFinished) span.setAttribute('allot.aborted', true);
  // A client gone before the answer began has none.
  if (!reply.raw.headersSent) return span.end();
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, reply.statusCode);
  if (reply.statusCode >= 500) {
    span.setAttribute('error.type', String(reply.statusCode));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}
