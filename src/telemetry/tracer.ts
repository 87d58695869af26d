/**
 * allot's spans are made through `@opentelemetry/api` alone. Until a tracer provider is
 * registered (by `allot serve` when an OTLP endpoint is configured, see sdk.ts, or by a library
 * user's own SDK) the request and decision paths see `tracingOff()` and make no span at all, and
 * a database transaction with no span around it makes none either. With a provider, attributes
 * that take work to compute are only computed for a span that records (`span.isRecording()`).
 */
import { ProxyTracerProvider, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
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

/** The API's no-op provider: what the global provider delegates to while none is registered. */
const noopProvider = new ProxyTracerProvider().getDelegate();

/**
 * Whether no tracer provider is registered (every span would be a no-op one): the request and
 * decision paths then skip their spans altogether. Asked at each request and decision, so a
 * provider registered later is used from then on.
 */
export function tracingOff(): boolean {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === noopProvider;
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
