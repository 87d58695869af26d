/**
 * The allocation decisions and the hold decisions, on the working set: check the project,
 * the kinds and the referenced resource, judge the change of usage (usage.ts), write the
 * record and journal the change. A refusal throws; the group rolls the working set back to the
 * decision's savepoint.
 */
import { confirmExceeding, deltasBetween, usageOf, type Line } from '../../domain/decision.js';
import { AllotError, notFound } from '../../domain/errors.js';
import { unknownKinds } from '../kinds.js';
import {
  allocationOf,
  checkGeneration,
  duplicateAllocation,
  holdOf,
  holdStatusOf,
  wasHold,
  type AllocationRow,
} from '../records.js';
import type { Allocation, CheckedAllocationInput, Hold, ResourceRef } from '../types.js';
import type { AllocationMetadata } from './operations.js';
import { applyUsage, moveUsage } from './usage.js';
import { resourceKey, type RecordState, type WorkingSet } from './working-set.js';

/** Who decides, and when: the same for every operation of one decision. */
export interface Actor {
  principal: string;
}

/** The project must exist; a missing one is named with its organization when that is missing. */
export function requireProject(ws: WorkingSet, organization: string, project: string): void {
  if (ws.project(organization, project)) return;
  if (!ws.organization(organization)) throw notFound(`organization "${organization}"`);
  throw notFound(`project "${project}" in organization "${organization}"`);
}

function requireKinds(ws: WorkingSet, lines: readonly Line[]): void {
  const unknown = lines.map((line) => line.kind).filter((kind) => !ws.kinds.has(kind));
  if (unknown.length > 0) throw unknownKinds('allocations', unknown);
}

function refuseDuplicate(ws: WorkingSet, organization: string, resource: ResourceRef, ownId: string | null): void {
  const existing = ws.liveResource(organization, resource.kind, resource.id);
  if (existing !== null && existing !== ownId) throw duplicateAllocation(resource, existing);
}

/** Lines as the store keeps them: by kind, nothing else on them. */
export const sortedLines = (lines: readonly Line[]): Line[] =>
  lines
    .map(({ kind, committed, reserved }) => ({ kind, committed, reserved }))
    .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));

/** Records a new row and its lines, and takes its referenced resource. */
function insertRecord(ws: WorkingSet, row: AllocationRow, lines: readonly Line[], metadata?: AllocationMetadata): RecordState {
  const record: RecordState = { row, lines: sortedLines(lines), ...(metadata ? { metadata } : {}) };
  ws.put(ws.records, row.id, record);
  ws.put(ws.liveResources, resourceKey(row.organization_id, row.resource_kind, row.resource_id), row.id);
  return record;
}

/** Changes a record's row (generation + 1, who and when), keeping the resource index in step. */
function updateRecord(
  ws: WorkingSet,
  actor: Actor,
  record: RecordState,
  changes: Partial<Pick<AllocationRow, 'resource_kind' | 'resource_id' | 'state' | 'expires_at' | 'resolution' | 'resolved_at' | 'deleted_at'>>,
): void {
  const { row } = record;
  const before = resourceKey(row.organization_id, row.resource_kind, row.resource_id);
  const wasLive = row.deleted_at === null;
  ws.set(row, { ...changes, generation: row.generation + 1, updated_by: actor.principal, updated_at: ws.nowMs });
  const after = resourceKey(row.organization_id, row.resource_kind, row.resource_id);
  if (wasLive && (row.deleted_at !== null || after !== before)) ws.put(ws.liveResources, before, null);
  if (row.deleted_at === null) ws.put(ws.liveResources, after, row.id);
}

function newRow(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  resource: ResourceRef,
  state: 'live' | 'held',
  expiresAt: number | null,
): AllocationRow {
  return {
    id,
    organization_id: organization,
    project_id: project,
    resource_kind: resource.kind,
    resource_id: resource.id,
    state,
    expires_at: expiresAt,
    resolution: null,
    resolved_at: null,
    generation: 1,
    created_by: actor.principal,
    updated_by: actor.principal,
    created_at: ws.nowMs,
    updated_at: ws.nowMs,
    deleted_at: null,
  };
}

/** The record `id` of `project`, or undefined (a record of another project is not found). */
function recordOf(ws: WorkingSet, organization: string, project: string, id: string): RecordState | undefined {
  const record = ws.records.get(id);
  return record && record.row.organization_id === organization && record.row.project_id === project ? record : undefined;
}

export function createAllocation(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  input: CheckedAllocationInput,
  metadata?: AllocationMetadata,
): Allocation {
  requireProject(ws, organization, project);
  requireKinds(ws, input.allocations);
  refuseDuplicate(ws, organization, input.resource, null);
  const deltas = deltasBetween([], usageOf(input.allocations, 'live'));
  moveUsage(ws, organization, project, deltas);
  const row = newRow(ws, actor, organization, project, id, input.resource, 'live', null);
  insertRecord(ws, row, input.allocations, metadata);
  const allocation = allocationOf(row, input.allocations);
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'allocation.created',
    subject: id,
    changes: JSON.stringify({ resource: allocation.resource, before: null, after: allocation.allocations }),
    deltas: deltasJson(deltas),
  });
  return allocation;
}

export function replaceAllocation(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  input: CheckedAllocationInput,
  ifGeneration: number | undefined,
  metadata?: AllocationMetadata,
): Allocation {
  requireProject(ws, organization, project);
  const record = recordOf(ws, organization, project, id);
  if (!record || record.row.state !== 'live' || record.row.deleted_at !== null) throw notFound(`allocation "${id}"`);
  checkGeneration(record.row, ifGeneration);
  requireKinds(ws, input.allocations);
  refuseDuplicate(ws, organization, input.resource, id);
  const before = record.lines;
  const deltas = deltasBetween(usageOf(before, 'live'), usageOf(input.allocations, 'live'));
  moveUsage(ws, organization, project, deltas);
  updateRecord(ws, actor, record, { resource_kind: input.resource.kind, resource_id: input.resource.id });
  ws.set(record, { lines: sortedLines(input.allocations), ...(metadata ? { metadata } : {}) });
  const allocation = allocationOf(record.row, input.allocations);
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'allocation.updated',
    subject: id,
    changes: JSON.stringify({ resource: allocation.resource, before, after: allocation.allocations }),
    deltas: deltasJson(deltas),
  });
  return allocation;
}

/** False for an allocation already deleted (a retried DELETE succeeds again). */
export function deleteAllocation(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  id: string,
  ifGeneration: number | undefined,
): { deleted: boolean } {
  requireProject(ws, organization, project);
  const record = recordOf(ws, organization, project, id);
  if (!record || record.row.state !== 'live') throw notFound(`allocation "${id}"`);
  if (record.row.deleted_at !== null) return { deleted: false };
  checkGeneration(record.row, ifGeneration);
  const before = record.lines;
  const deltas = deltasBetween(usageOf(before, 'live'), []);
  applyUsage(ws, organization, project, deltas);
  updateRecord(ws, actor, record, { deleted_at: ws.nowMs });
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'allocation.deleted',
    subject: id,
    changes: JSON.stringify({ resource: { kind: record.row.resource_kind, id: record.row.resource_id }, before, after: null }),
    deltas: deltasJson(deltas),
  });
  return { deleted: true };
}

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

/** An entry's deltas as the journal stores them (committed, reserved, held per kind). */
export function deltasJson(deltas: readonly { kind: string; committed: number; reserved: number; held: number }[]): string {
  return JSON.stringify(deltas.map(({ kind, committed, reserved, held }) => ({ kind, committed, reserved, held })));
}
