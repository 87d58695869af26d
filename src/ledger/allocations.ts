/**
 * The allocation decisions. Each runs inside the caller's transaction: check the project,
 * resolve the organization's expired holds, check the kinds and the referenced resource, move
 * the counters (which checks the quotas), write the allocation and its journal entry. A
 * refusal throws before anything is committed.
 */
import { deltasBetween, usageOf } from '../domain/decision.js';
import { notFound } from '../domain/errors.js';
import type { Executor } from '../store/store.js';
import type { WriteContext } from './context.js';
import { applyDeltasAndJournal, counterKeysOf } from './counters.js';
import { freeDueHolds, resolveDueHolds } from './holds.js';
import { appendJournal } from './journal.js';
import { requireKinds } from './kinds.js';
import { precheckCreate } from './precheck.js';
import { decodeCursor, pageOf } from './pages.js';
import {
  allocationOf,
  checkGeneration,
  insertRecord,
  readLines,
  readLinesOf,
  readRecord,
  refuseDuplicate,
  replaceLines,
  updateRecord,
  type AllocationRow,
} from './records.js';
import { lockProject, requireOrganization, requireProject } from './tenants.js';
import type { Allocation, AllocationFilter, CheckedAllocationInput, Page } from './types.js';

export async function createAllocation(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
  input: CheckedAllocationInput,
): Promise<Allocation> {
  const { tx, nowMs } = context;
  const kinds = input.allocations.map((l) => l.kind);
  const { holdExpired } = await precheckCreate(context, organization, project, kinds, input.resource, nowMs);
  const due = holdExpired ? await resolveDueHolds(context, organization) : { count: 0, changes: [] };
  // The rows first, the counters last: the counter rows are what concurrent decisions wait
  // for, so they are locked for as short a time as possible.
  const row = await insertRecord(
    context,
    { id, organization_id: organization, project_id: project, state: 'live', expires_at: null },
    input.resource,
    input.allocations,
  );
  const deltas = deltasBetween([], usageOf(input.allocations, 'live'));
  const allocation = allocationOf(row, input.allocations);
  await freeDueHolds(context, organization, due, counterKeysOf([{ project, deltas }]));
  await applyDeltasAndJournal(context, organization, project, deltas, {
    organization,
    project,
    action: 'allocation.created',
    subject: id,
    changes: { resource: allocation.resource, before: null, after: allocation.allocations },
    deltas,
  });
  return allocation;
}

export async function replaceAllocation(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
  input: CheckedAllocationInput,
  ifGeneration: number | undefined,
): Promise<Allocation> {
  const { tx } = context;
  await lockProject(context, organization, project);
  const { target, ...due } = await resolveDueHolds(context, organization, { project, id });
  const row = liveOrNotFound(target, id);
  if (row.deleted_at !== null) throw notFound(`allocation "${id}"`);
  checkGeneration(row, ifGeneration);
  await requireKinds(tx, input.allocations.map((l) => l.kind), 'allocations');
  await refuseDuplicate(tx, organization, input.resource, id);
  const before = await readLines(tx, id);
  const deltas = deltasBetween(usageOf(before, 'live'), usageOf(input.allocations, 'live'));
  const next = await updateRecord(context, row, {
    resource_kind: input.resource.kind,
    resource_id: input.resource.id,
  });
  await replaceLines(tx, id, input.allocations);
  const allocation = allocationOf(next, input.allocations);
  await freeDueHolds(context, organization, due, counterKeysOf([{ project, deltas }]));
  await applyDeltasAndJournal(context, organization, project, deltas, {
    organization,
    project,
    action: 'allocation.updated',
    subject: id,
    changes: { resource: allocation.resource, before, after: allocation.allocations },
    deltas,
  });
  return allocation;
}

/**
 * Deletes a live allocation and frees what it used. Returns false when it was already deleted,
 * so a client that retries a DELETE gets the same success (whatever its If-Match: the
 * allocation it named is gone either way); an id that never existed is a 404.
 */
export async function deleteAllocation(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
  ifGeneration: number | undefined,
): Promise<boolean> {
  const { tx, nowMs } = context;
  await lockProject(context, organization, project);
  const { target, ...due } = await resolveDueHolds(context, organization, { project, id });
  const row = liveOrNotFound(target, id);
  if (row.deleted_at !== null) {
    await freeDueHolds(context, organization, due, []);
    return false;
  }
  checkGeneration(row, ifGeneration);
  const before = await readLines(tx, id);
  const deltas = deltasBetween(usageOf(before, 'live'), []);
  await updateRecord(context, row, { deleted_at: nowMs });
  await freeDueHolds(context, organization, due, counterKeysOf([{ project, deltas }]));
  await applyDeltasAndJournal(context, organization, project, deltas, {
    organization,
    project,
    action: 'allocation.deleted',
    subject: id,
    changes: { resource: { kind: row.resource_kind, id: row.resource_id }, before, after: null },
    deltas,
  });
  return true;
}

/** An allocation (live or deleted), locked; a pending or ended hold is not one: 404. */
function liveOrNotFound(row: AllocationRow | undefined, id: string): AllocationRow {
  if (!row || row.state !== 'live') throw notFound(`allocation "${id}"`);
  return row;
}

export async function readAllocation(
  tx: Executor,
  organization: string,
  project: string,
  id: string,
): Promise<Allocation | undefined> {
  const row = await readRecord(tx, organization, project, id);
  if (!row || row.state !== 'live' || row.deleted_at !== null) return undefined;
  return allocationOf(row, await readLines(tx, id));
}

export async function listAllocations(
  tx: Executor,
  organization: string,
  project: string,
  filter: AllocationFilter,
  limit: number,
): Promise<Page<Allocation>> {
  await requireProject(tx, organization, project);
  return listLiveAllocations(tx, organization, { ...filter, project }, limit, 'project');
}

/**
 * An organization's live allocations, in (project, id) order so a page walks the
 * allocations_by_project index; its cursor is `project/id` (ids never hold a '/').
 */
export async function listOrganizationAllocations(
  tx: Executor,
  organization: string,
  filter: AllocationFilter,
  limit: number,
): Promise<Page<Allocation>> {
  await requireOrganization(tx, organization);
  return listLiveAllocations(tx, organization, filter, limit, 'organization');
}

/**
 * One page of live allocations. A project's listing keeps the cursor it has always had (the
 * last id), so cursors held across an upgrade, or sent to a process not yet upgraded, still
 * page correctly; the organization's listing pages by (project, id).
 */
async function listLiveAllocations(
  tx: Executor,
  organization: string,
  filter: AllocationFilter,
  limit: number,
  scope: 'project' | 'organization',
): Promise<Page<Allocation>> {
  const after = decodeCursor(filter.cursor) ?? '';
  const conditions = ['organization_id = ?', "state = 'live'", 'deleted_at IS NULL'];
  const params: (string | number)[] = [organization];
  if (scope === 'project') {
    conditions.push('id > ?');
    params.push(after);
  } else {
    const [afterProject = '', afterId = ''] = after.split('/');
    conditions.push('(project_id, id) > (?, ?)');
    params.push(afterProject, afterId);
  }
  for (const [column, value] of [
    ['project_id', filter.project],
    ['resource_kind', filter.resourceKind],
    ['resource_id', filter.resourceId],
  ] as const) {
    if (value === undefined) continue;
    conditions.push(`${column} = ?`);
    params.push(value);
  }
  const rows = await tx.all<AllocationRow>(
    `SELECT * FROM allocations WHERE ${conditions.join(' AND ')} ORDER BY project_id, id LIMIT ?`,
    [...params, limit + 1],
  );
  const page = pageOf(rows, limit, (row) => (scope === 'project' ? row.id : `${row.project_id}/${row.id}`));
  const lines = await readLinesOf(tx, page.items.map((row) => row.id));
  return {
    items: page.items.map((row) => allocationOf(row, lines.get(row.id) ?? [])),
    nextCursor: page.nextCursor,
  };
}
