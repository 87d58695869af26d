/**
 * Database spans: one `db.transaction` span (kind CLIENT) per store transaction, its retries
 * included, as a child of the span that asked for it (a request's, a decision group's, or the
 * library user's own). A transaction with no span around it makes none: the sweeper's and the
 * controller's periodic reads, migrations and the CLI make no traces of their own. No SQL and
 * no parameter is ever an attribute: only the engine, the access and, on failure, the error's
 * code.
 */
import { context, SpanKind, trace } from '@opentelemetry/api';
import { failed, tracer } from './tracer.js';

/** The engines, as OpenTelemetry names them (`db.system`, `db.system.name`). */
export type DatabaseSystem = 'sqlite' | 'postgresql';

interface TransactionShape {
  readOnly?: boolean;
  snapshot?: boolean;
}

/** Runs `run` (one transaction, with its retries) under a `db.transaction` span. */
export function traceTransaction<T>(system: DatabaseSystem, options: TransactionShape, run: () => Promise<T>): Promise<T> {
  const parent = context.active();
  if (trace.getSpan(parent) === undefined) return run();
  const span = tracer().startSpan(
    'db.transaction',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system': system,
        'db.system.name': system,
        'allot.db.access': options.readOnly ? 'read' : 'write',
        ...(options.snapshot ? { 'allot.db.snapshot': true } : {}),
      },
    },
    parent,
  );
  return context.with(trace.setSpan(parent, span), run).then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      failed(span, error);
      span.end();
      throw error;
    },
  );
}
