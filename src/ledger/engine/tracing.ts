/**
 * The group commit's spans. A decision's span (`decide <op>`, or `decide batch`) is a child of
 * its caller's span (the HTTP request's): it starts when the decision is queued and ends when
 * it is answered, so it shows the wait for the group, and says what was asked (organization,
 * project, kinds, operations) and how it ended (outcome, problem code).
 *
 * A group decides many decisions, of many requests and traces, in one transaction, and a span
 * has one parent. The group's span (`group commit`) is the child of the group's first sampled
 * decision, whose trace so reads request → decision → group commit → db.transaction; it links
 * to every other decision of the group, and each of them links back to it, so every request's
 * trace leads to the transaction that decided it (and to its neighbours in it). The database
 * work of the group (its transaction, attempts after a lost race, counter rows made first)
 * runs in the group span's context.
 *
 * With no provider registered, the spans are the API's no-op ones and nothing is computed.
 */
import { context, ROOT_CONTEXT, SpanKind, trace, type Context, type Link, type Span } from '@opentelemetry/api';
import { failed, tracer, tracingOff } from '../../telemetry/tracer.js';
import type { Decision, DecisionOutcome, OperationOutcome } from './engine.js';
import type { Operation } from './operations.js';

interface DecisionTrace {
  span: Span;
  context: Context;
}

interface Answerable {
  decision: Decision;
  resolve(outcome: DecisionOutcome): void;
  reject(error: unknown): void;
}

/** The spans of queued decisions, by their queue entry. */
const traces = new WeakMap<object, DecisionTrace>();

/** A queue entry whose decision has a span, ended as it is answered. */
export function traced<Q extends Answerable>(queued: Q): Q {
  if (tracingOff()) return queued;
  const parent = context.active();
  const { decision } = queued;
  const span = tracer().startSpan(
    decision.operations.length === 1 ? `decide ${decision.operations[0]!.op}` : 'decide batch',
    { kind: SpanKind.INTERNAL },
    parent,
  );
  if (span.isRecording()) span.setAttributes(attributesOf(decision));
  const entry: Q = {
    ...queued,
    resolve: (outcome: DecisionOutcome) => {
      if (span.isRecording()) span.setAttributes(outcomeAttributes(outcome));
      span.end();
      queued.resolve(outcome);
    },
    reject: (error: unknown) => {
      span.setAttribute('allot.outcome', 'failed');
      failed(span, error);
      span.end();
      queued.reject(error);
    },
  };
  traces.set(entry, { span, context: trace.setSpan(parent, span) });
  return entry;
}

/** Runs a group's work in the context of its span (see above). */
export function traceGroup(group: readonly object[], run: () => Promise<void>): Promise<void> {
  if (tracingOff()) return run();
  const decisions = group.map((queued) => traces.get(queued)).filter((found): found is DecisionTrace => found !== undefined);
  const parent = decisions.find(({ span }) => span.isRecording());
  // None recorded: the work still runs in a decision's context, never in whichever request's
  // context the pipeline happened to be started from.
  if (parent === undefined) return context.with(decisions[0]?.context ?? ROOT_CONTEXT, run);
  const links: Link[] = decisions.filter((other) => other !== parent && other.span.isRecording()).map(({ span }) => ({ context: span.spanContext() }));
  const operations = group.reduce((sum, queued) => sum + ((queued as Partial<Answerable>).decision?.operations.length ?? 0), 0);
  const span = tracer().startSpan(
    'group commit',
    { kind: SpanKind.INTERNAL, links, attributes: { 'allot.group.decisions': group.length, 'allot.group.operations': operations } },
    parent.context,
  );
  for (const decision of decisions) {
    decision.span.setAttribute('allot.group.decisions', group.length);
    if (decision !== parent) decision.span.addLink({ context: span.spanContext() });
  }
  return context.with(trace.setSpan(parent.context, span), run).then(
    () => span.end(),
    (error: unknown) => {
      failed(span, error);
      span.end();
      throw error;
    },
  );
}

function attributesOf(decision: Decision): Record<string, string | number | boolean | string[]> {
  const { operations } = decision;
  const projects = [...new Set(operations.map(projectOf).filter((project): project is string => project !== undefined))];
  const kinds = [...new Set(operations.flatMap(kindsOf))].sort();
  return {
    'allot.organization': operations[0]!.organization,
    ...(projects.length === 1 ? { 'allot.project': projects[0]! } : projects.length > 1 ? { 'allot.projects': projects } : {}),
    ...(kinds.length > 0 ? { 'allot.kinds': kinds } : {}),
    'allot.operations': operations.length,
    ...(operations.length > 1 ? { 'allot.decision.mode': decision.mode } : {}),
    ...(decision.dryRun ? { 'allot.dry_run': true } : {}),
    ...(decision.idempotency ? { 'allot.idempotent': true } : {}),
  };
}

function projectOf(operation: Operation): string | undefined {
  return 'project' in operation ? operation.project : undefined;
}

/** The resource kinds an operation names (a delete or a release names none: it frees what it holds). */
function kindsOf(operation: Operation): string[] {
  switch (operation.op) {
    case 'allocation.create':
    case 'allocation.replace':
    case 'hold.create':
      return operation.input.allocations.map((line) => line.kind);
    case 'hold.confirm':
      return operation.lines?.map((line) => line.kind) ?? [];
    case 'quota.set':
    case 'project-quota.set':
      return operation.inputs.map((input) => input.kind);
    default:
      return [];
  }
}

/**
 * How a decision ended: `applied`, `refused` (with the first refusal's problem code), `partial`
 * (a batch decided each on its own, some refused), or what the idempotency key answered
 * (`replayed`, `reused`, `pending`).
 */
function outcomeAttributes(outcome: DecisionOutcome): Record<string, string | number> {
  if (outcome.kind !== 'decided') return { 'allot.outcome': outcome.kind };
  const refused = outcome.outcomes.filter((result): result is Extract<OperationOutcome, { status: 'refused' }> => result.status === 'refused');
  const applied = outcome.outcomes.some((result) => result.status === 'applied');
  if (refused.length === 0) return { 'allot.outcome': 'applied' };
  const [first] = refused;
  return {
    'allot.outcome': applied ? 'partial' : 'refused',
    'allot.problem': first!.error.code,
    ...(outcome.outcomes.length > 1 ? { 'allot.refused': refused.length } : {}),
    ...(first!.error.extensions.violations ? { 'allot.violations': first!.error.extensions.violations.length } : {}),
  };
}
