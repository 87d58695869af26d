/**
 * What an answer means for the clients' model. Each operation has a few answers that are
 * right (an acknowledgement, a denial); anything else — a 404 for an allocation the clients
 * were told exists, a hold resolved by nobody, a body that differs from the request — is a
 * violation. Answers come from the client (`client`) or, for requests never answered, from
 * the idempotency record the server stored with the change (`store`).
 */
import { kindDefaults } from './tenancy.js';
import { problemType } from './http.js';
import {
  linesOf,
  sameLines,
  showLines,
  type Entity,
  type Model,
  type Op,
  type Stats,
  type Violations,
} from './model.js';

export interface Answer {
  status: number;
  body: unknown;
}

export type Source = 'client' | 'store';

export interface AnswerContext {
  model: Model;
  stats: Stats;
  violations: Violations;
}

const field = (body: unknown, name: string): unknown => (body as Record<string, unknown> | null | undefined)?.[name];

function describe(op: Op): string {
  const target = op.entity ? ` ${op.entity.id}` : op.resource ? ` for ${op.resource.kind}/${op.resource.id}` : '';
  return `${op.kind}${target} in ${op.organization}/${op.project} (${op.call.method} ${op.call.path}, key ${op.call.key})`;
}

const excerpt = (body: unknown) => JSON.stringify(body ?? null).slice(0, 300);

/** Applies an answer; returns how it counts, or 'unexpected' (a violation was recorded). */
export function applyAnswer(
  context: AnswerContext,
  op: Op,
  answer: Answer,
  source: Source,
  receivedAt?: number,
): 'acknowledged' | 'denied' | 'unexpected' {
  const { model, violations } = context;
  const type = problemType(answer.body);
  const unexpected = (check = 'unexpected-answer', why = '') => {
    violations.add(
      check,
      `${describe(op)} answered ${answer.status}${why ? ` (${why})` : ''} [${source}]: ${excerpt(answer.body)}`,
    );
    if (op.entity) model.abandon(op.entity);
    return 'unexpected' as const;
  };
  const lost = () => unexpected('acknowledged-write-lost', 'the clients were told it exists');

  switch (op.kind) {
    case 'create-allocation':
    case 'create-hold': {
      const hold = op.kind === 'create-hold';
      if (answer.status === 409 && type === '/problems/quota-exceeded') {
        model.refused.push(op);
        return 'denied';
      }
      if (answer.status !== 201) return unexpected();
      const id = field(answer.body, 'id');
      const lines = linesOf(field(answer.body, 'allocations'));
      if (typeof id !== 'string' || lines === null) return unexpected('answer-content', 'no id or allocations');
      if (!sameLines(lines, op.lines ?? [])) {
        unexpected('answer-content', `allocations ${showLines(lines)}, asked for ${showLines(op.lines ?? [])}`);
      }
      if (model.entities.has(id)) return unexpected('answer-content', 'an id already given to another create');
      const expiresAt = hold ? Date.parse(String(field(answer.body, 'expiresAt'))) : NaN;
      if (hold && (field(answer.body, 'status') !== 'pending' || Number.isNaN(expiresAt))) {
        unexpected('answer-content', 'a new hold that is not pending, or without expiresAt');
      }
      const entity: Entity = {
        id,
        organization: op.organization,
        project: op.project,
        resource: op.resource!,
        status: hold ? 'pending' : 'live',
        wasHold: hold,
        confirmed: false,
        lines,
        expiresAtMs: hold ? expiresAt : null,
        busy: false,
        uncertain: false,
        learntAfterwards: source === 'store',
      };
      model.add(entity);
      if (hold) model.latestHoldExpiryMs = Math.max(model.latestHoldExpiryMs, expiresAt);
      return 'acknowledged';
    }

    case 'replace': {
      const entity = op.entity!;
      if (answer.status === 409 && type === '/problems/quota-exceeded') return 'denied';
      if (answer.status === 404) return lost();
      if (answer.status !== 200) return unexpected();
      const lines = linesOf(field(answer.body, 'allocations'));
      if (lines === null || !sameLines(lines, op.lines ?? [])) {
        return unexpected('answer-content', `allocations ${lines ? showLines(lines) : '?'}, asked for ${showLines(op.lines ?? [])}`);
      }
      entity.lines = lines;
      entity.resource = op.resource!;
      return 'acknowledged';
    }

    case 'delete': {
      if (answer.status === 404) return lost();
      if (answer.status !== 204) return unexpected();
      model.setStatus(op.entity!, 'deleted');
      return 'acknowledged';
    }

    case 'confirm':
    case 'release': {
      const entity = op.entity!;
      if (answer.status === 404) return lost();
      if (answer.status === 409 && type === '/problems/hold-already-resolved') {
        const resolution = field(answer.body, 'resolution');
        if (resolution !== 'expired') {
          return unexpected('hold-resolved-twice', `resolved as ${String(resolution)} by no acknowledged request`);
        }
        if (receivedAt !== undefined && entity.expiresAtMs !== null && receivedAt < entity.expiresAtMs) {
          return unexpected('hold-expired-early', `answered at ${new Date(receivedAt).toISOString()}, expires ${new Date(entity.expiresAtMs).toISOString()}`);
        }
        model.setStatus(entity, 'expired');
        return 'denied';
      }
      if (answer.status !== 200) return unexpected();
      if (entity.expiresAtMs !== null && op.firstSentAt > entity.expiresAtMs + 2) {
        return unexpected('expired-hold-resolved', `first sent ${op.firstSentAt - entity.expiresAtMs} ms after the hold expired`);
      }
      const status = field(answer.body, 'status');
      const lines = linesOf(field(answer.body, 'allocations'));
      if (op.kind === 'release') {
        if (status !== 'released') return unexpected('answer-content', `status ${String(status)}`);
        model.setStatus(entity, 'released');
        return 'acknowledged';
      }
      const expected = op.lines ?? entity.lines;
      if (status !== 'confirmed' || lines === null || !sameLines(lines, expected)) {
        return unexpected('answer-content', `status ${String(status)}, allocations ${lines ? showLines(lines) : '?'}, expected ${showLines(expected)}`);
      }
      entity.lines = lines;
      entity.confirmed = true;
      model.setStatus(entity, 'live');
      return 'acknowledged';
    }

    case 'batch':
      return applyBatch(context, op, answer, source, unexpected, receivedAt);

    case 'set-quota': {
      if (answer.status === 409 && type === '/problems/quota-below-usage') return 'denied';
      if (answer.status !== 200) return unexpected();
      const quotas = field(answer.body, 'quotas');
      for (const change of op.quotas ?? []) {
        const row = Array.isArray(quotas)
          ? (quotas as Record<string, unknown>[]).find((q) => q?.kind === change.kind)
          : undefined;
        const expected = change.quantity ?? kindDefaults.get(change.kind) ?? null;
        if (row?.quantity !== expected) {
          unexpected('answer-content', `${change.kind} quantity ${String(row?.quantity)}, set to ${String(expected)}`);
        }
      }
      return 'acknowledged';
    }
  }
}

/**
 * A batch of creates: independent, each result is what its own request would have answered;
 * atomic, either every create is acknowledged or none is applied (the failing one named).
 */
function applyBatch(
  context: AnswerContext,
  op: Op,
  answer: Answer,
  source: Source,
  unexpected: (check?: string, why?: string) => 'unexpected',
  receivedAt?: number,
): 'acknowledged' | 'denied' | 'unexpected' {
  const parts = op.parts ?? [];
  const results = field(answer.body, 'results');
  if (!Array.isArray(results) || results.length !== parts.length) return unexpected('answer-content', 'no result per operation');
  const resultAt = (i: number) => results[i] as { status: number | null; body?: unknown };
  if (answer.status === 200) {
    let verdict: 'acknowledged' | 'denied' | 'unexpected' = 'acknowledged';
    parts.forEach((part, i) => {
      const { status, body } = resultAt(i);
      if (op.mode === 'atomic' && status !== 201) verdict = unexpected('batch-atomicity', `operation ${i} answered ${status} in an applied atomic batch`);
      else if (applyAnswer(context, part, { status: status ?? 0, body }, source, receivedAt) === 'unexpected') verdict = 'unexpected';
    });
    return verdict;
  }
  const failed = field(answer.body, 'failedOperation');
  if (op.mode !== 'atomic' || answer.status !== 409 || problemType(answer.body) !== '/problems/quota-exceeded' || typeof failed !== 'number') {
    return unexpected();
  }
  // Refused whole: the failing create answers 409, every other one is not applied.
  for (let i = 0; i < parts.length; i += 1) {
    const { status } = resultAt(i);
    if (status !== (i === failed ? 409 : null)) return unexpected('batch-atomicity', `operation ${i} answered ${status} in a refused atomic batch`);
  }
  context.model.refused.push(...parts);
  return 'denied';
}
