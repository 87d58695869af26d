/**
 * What `allot serve` sets up for logs and traces. Traces are exported over OTLP/HTTP when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, unless
 * `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`; otherwise the SDK is not even
 * loaded, no provider is registered, and every span is the API's no-op one.
 */
import type { FastifyInstance } from 'fastify';
import type { Tracing } from './sdk.js';

export { loggerOptions } from './logging.js';

/** Whether the environment asks for traces to be exported. */
export function tracesRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim().toLowerCase());
  if (exporters.includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * Starts exporting traces if the environment asks for it, the SDK's warnings going to the
 * app's log; the buffered spans are exported when the app closes. Returns whether it started.
 */
export async function exportTraces(app: FastifyInstance, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!tracesRequested(env)) return undefined;
  const { startTracing } = await import('./sdk.js');
  const tracing = startTracing({ warn: (message) => app.log.warn(message), error: (message) => app.log.error(message) });
  app.addHook('onClose', async () => tracing.shutdown());
  app.log.info('traces are exported over OTLP/HTTP');
  return tracing;
}
