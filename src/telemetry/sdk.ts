/**
 * The OpenTelemetry SDK of `allot serve`, loaded only when traces are to be exported (see
 * serve.ts): a Node tracer provider (AsyncLocalStorage context, W3C trace-context propagation)
 * whose spans are batched to an OTLP/HTTP exporter. The exporter reads the standard variables
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `…_HEADERS`,
 * `…_TIMEOUT`), the batch processor `OTEL_BSP_*`, the sampler `OTEL_TRACES_SAMPLER[_ARG]`; the
 * resource is `service.name` allot (or `OTEL_SERVICE_NAME`) with `OTEL_RESOURCE_ATTRIBUTES`.
 */
import { diag, DiagLogLevel, type DiagLogFunction } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { apiVersion } from '../domain/constants.js';

/** Where the SDK's own warnings go (an unreachable collector, say). */
export interface DiagnosticLog {
  warn(message: string): void;
  error(message: string): void;
}

export interface Tracing {
  /** Exports what is buffered and stops; bounded by `timeoutMs`. */
  shutdown(timeoutMs?: number): Promise<void>;
}

export function startTracing(log: DiagnosticLog): Tracing {
  const quiet: DiagLogFunction = () => undefined;
  const line = (write: (message: string) => void): DiagLogFunction => (message, ...args) =>
    write(['opentelemetry:', message, ...args.map((arg) => (arg instanceof Error ? arg.message : String(arg)))].join(' '));
  diag.setLogger({ error: line((m) => log.error(m)), warn: line((m) => log.warn(m)), info: quiet, debug: quiet, verbose: quiet }, DiagLogLevel.WARN);
  const provider = new NodeTracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'allot', [ATTR_SERVICE_VERSION]: apiVersion }))
      .merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    async shutdown(timeoutMs = 5000) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      try {
        await Promise.race([provider.shutdown(), late]);
      } catch (error) {
        log.warn(`opentelemetry: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
        diag.disable();
      }
    },
  };
}
