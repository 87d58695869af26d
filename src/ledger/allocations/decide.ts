/**
 * The allocation decisions, on the working set (the hold decisions, in holds/, share the
 * record helpers here): check the project,
 * the kinds and the referenced resource, judge the change of usage (usage.ts), write the
 * record and journal the change. A refusal throws; the group rolls the working set back to the
 * decision's savepoint.
 */
import { deltasBetween, usageOf, type Line } from '../../domain/decision.js';
import { notFound } from '../../domain/errors.js';
import { unknownKinds } from '../catalog/kinds.js';
import { allocationOf, checkGeneration, duplicateAllocation, type AllocationRow } from '../records.js';
import type { Allocation, CheckedAllocationInput, ResourceRef } from '../types.js';
import type { AllocationMetadata } from '../engine/operations.js';
import { applyUsage, moveUsage } from '../engine/usage.js';
import { resourceKey, type RecordState, type WorkingSet } from '../engine/working-set.js';

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

export function requireKinds(ws: WorkingSet, lines: readonly Line[]): void {
  const unknown = lines.map((line) => line.kind).filter((kind) => !ws.kinds.has(kind));
  if (unknown.length > 0) throw unknownKinds('allocations', unknown);
}

export function refuseDuplicate(ws: WorkingSet, organization: string, resource: ResourceRef, ownId: string | null): void {
  const existing = ws.liveResource(organization, resource.kind, resource.id);
  if (existing !== null && existing !== ownId) throw duplicateAllocation(resource, existing);
}

/** Lines as the store keeps them: by kind, nothing else on them. */
export const sortedLines = (lines: readonly Line[]): Line[] =>
  lines
    .map(({ kind, committed, reserved }) => ({ kind, committed, reserved }))
    .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));

/** Records a new row and its lines, and takes its referenced resource. */
export function insertRecord(ws: WorkingSet, row: AllocationRow, lines: readonly Line[], metadata?: AllocationMetadata): RecordState {
  const record: RecordState = { row, lines: sortedLines(lines), ...(metadata ? { metadata } : {}) };
  ws.put(ws.records, row.id, record);
  ws.put(ws.liveResources, resourceKey(row.organization_id, row.resource_kind, row.resource_id), row.id);
  return record;
}

/** Changes a record's row (generation + 1, who and when), keeping the resource index in step. */
export function updateRecord(
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

export function newRow(
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
export function recordOf(ws: WorkingSet, organization: string, project: string, id: string): RecordState | undefined {
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

/** An entry's deltas as the journal stores them (committed, reserved, held per kind). */
export function deltasJson(deltas: readonly { kind: string; committed: number; reserved: number; held: number }[]): string {
  return JSON.stringify(deltas.map(({ kind, committed, reserved, held }) => ({ kind, committed, reserved, held })));
}
