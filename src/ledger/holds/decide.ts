/**
 * The hold decisions, on the working set: a hold counts as held at once and resolves exactly
 * once (confirmed into an allocation, released, or expired). A refusal throws; the group rolls
 * the working set back to the decision's savepoint.
 */
import { confirmExceeding, deltasBetween, usageOf, type Line } from '../../domain/decision.js';
import { AllotError, notFound } from '../../domain/errors.js';
import {
  deltasJson,
  insertRecord,
  newRow,
  recordOf,
  refuseDuplicate,
  requireKinds,
  requireProject,
  sortedLines,
  updateRecord,
  type Actor,
} from '../allocations/decide.js';
import { checkGeneration, holdOf, holdStatusOf, wasHold } from '../records.js';
import type { CheckedAllocationInput, Hold } from '../types.js';
import { applyUsage, moveUsage } from '../engine/usage.js';
import type { RecordState, WorkingSet } from '../engine/working-set.js';

export function createHold(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  input: CheckedAllocationInput & { ttlSeconds: number },
): Hold {
  requireProject(ws, organization, project);
  requireKinds(ws, input.allocations);
  refuseDuplicate(ws, organization, input.resource, null);
  const deltas = deltasBetween([], usageOf(input.allocations, 'held'));
  moveUsage(ws, organization, project, deltas);
  const row = newRow(ws, actor, organization, project, id, input.resource, 'held', ws.nowMs + input.ttlSeconds * 1000);
  insertRecord(ws, row, input.allocations);
  const hold = holdOf(row, input.allocations, ws.nowMs);
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'hold.created',
    subject: id,
    changes: JSON.stringify({ resource: hold.resource, held: hold.allocations, expiresAt: hold.expiresAt }),
    deltas: deltasJson(deltas),
  });
  return hold;
}

/** A hold that is no longer pending answers 409 hold-already-resolved, naming how it ended. */
function pendingHold(ws: WorkingSet, organization: string, project: string, id: string): RecordState {
  requireProject(ws, organization, project);
  const record = recordOf(ws, organization, project, id);
  if (!record || !wasHold(record.row)) throw notFound(`hold "${id}"`);
  const status = holdStatusOf(record.row, ws.nowMs);
  if (status !== 'pending') {
    throw new AllotError('hold-already-resolved', `hold "${id}" was already ${status}`, { resolution: status });
  }
  return record;
}

/** Confirms a pending hold as a live allocation of `confirmed` (all it holds when absent). */
export function confirmHold(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  confirmed: readonly Line[] | undefined,
  ifGeneration: number | undefined,
): Hold {
  const record = pendingHold(ws, organization, project, id);
  checkGeneration(record.row, ifGeneration);
  const held = record.lines;
  const lines = [...(confirmed ?? held)];
  const exceeding = confirmExceeding(held, lines);
  if (exceeding !== null) {
    throw new AllotError('confirm-exceeds-hold', `kind "${exceeding}": a hold can be confirmed for at most what it holds`);
  }
  // Usage never rises: a confirm passes even where a kind is over its limit.
  const deltas = deltasBetween(usageOf(held, 'held'), usageOf(lines, 'live'));
  applyUsage(ws, organization, project, deltas);
  updateRecord(ws, actor, record, { state: 'live', resolution: 'confirmed', resolved_at: ws.nowMs });
  ws.set(record, { lines: sortedLines(lines) });
  const hold = holdOf(record.row, lines, ws.nowMs);
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'hold.confirmed',
    subject: id,
    changes: JSON.stringify({ resource: hold.resource, held, confirmed: hold.allocations }),
    deltas: deltasJson(deltas),
  });
  return hold;
}

export function releaseHold(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  ifGeneration: number | undefined,
): Hold {
  const record = pendingHold(ws, organization, project, id);
  checkGeneration(record.row, ifGeneration);
  const held = record.lines;
  const deltas = deltasBetween(usageOf(held, 'held'), []);
  applyUsage(ws, organization, project, deltas);
  updateRecord(ws, actor, record, { resolution: 'released', resolved_at: ws.nowMs, deleted_at: ws.nowMs });
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'hold.released',
    subject: id,
    changes: JSON.stringify({ resource: { kind: record.row.resource_kind, id: record.row.resource_id }, held }),
    deltas: deltasJson(deltas),
  });
  return holdOf(record.row, held, ws.nowMs);
}

/**
 * Resolves the organization's due holds (loaded with the group, in id order) as expired: frees
 * what they hold and journals each. Runs for every organization of a group before its first
 * decision, so no decision counts an expired hold.
 */
export function expireDueHolds(ws: WorkingSet, organization: string, due: readonly RecordState[], principal: string): number {
  const actor = { principal };
  let expired = 0;
  for (const record of due) {
    const { row } = record;
    if (row.state !== 'held' || row.deleted_at !== null || row.expires_at === null || row.expires_at > ws.nowMs) continue;
    const deltas = deltasBetween(usageOf(record.lines, 'held'), []);
    applyUsage(ws, organization, row.project_id, deltas);
    updateRecord(ws, actor, record, { resolution: 'expired', resolved_at: ws.nowMs, deleted_at: ws.nowMs });
    ws.appendJournal({
      organization,
      project: row.project_id,
      principal: actor.principal,
      action: 'hold.expired',
      subject: row.id,
      changes: JSON.stringify({
        resource: { kind: row.resource_kind, id: row.resource_id },
        held: record.lines,
        expiredAt: new Date(row.expires_at).toISOString(),
      }),
      deltas: deltasJson(deltas),
    });
    expired += 1;
  }
  return expired;
}
