/**
 * allot's spans are made through `@opentelemetry/api` alone: until a tracer provider is
 * registered (by `allot serve` when an OTLP endpoint is configured, see sdk.ts, or by a library
 * user's own SDK) every call below reaches the API's no-op tracer, which records nothing and
 * costs a few allocations. Attributes that take work to compute are only computed for a span
 * that records (`span.isRecording()`).
 */
import { SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { apiVersion } from '../domain/constants.js';

/** The instrumentation scope of every allot span. */
export const scopeName = 'allot';

/**
 * The global provider's tracer, asked for at each span: a provider registered (or replaced)
 * after this module loaded is the one used.
 */
export function tracer(): Tracer {
  return trace.getTracer(scopeName, apiVersion);
}

/**
 * What failed, as a short type (an error's code, else its class): never its message, which may
 * quote a request's values or a statement's parameters.
 */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code)) return code;
  return error instanceof Error ? error.constructor.name : typeof error;
}

/** Marks a span failed (status ERROR, `error.type`). */
export function failed(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  span.setAttribute('error.type', errorType(error));
  span.setStatus({ code: SpanStatusCode.ERROR });
}
