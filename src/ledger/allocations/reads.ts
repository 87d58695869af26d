/**
 * Reading allocations: one, or a page of a project's or an organization's live ones. (Their
 * changes are decisions: see engine/.)
 */
import type { Executor } from '../../store/store.js';

import { decodeCursor, pageOf } from '../pages.js';
import {
  allocationOf,
  readLines,
  readLinesOf,
  readRecord,
  type AllocationRow,
} from '../records.js';
import { requireOrganization, requireProject } from '../catalog/tenants.js';
import type { Allocation, AllocationFilter, Page } from '../types.js';

export async function readAllocation(
  tx: Executor,
  organization: string,
  project: string,
  id: string,
): Promise<Allocation | undefined> {
  const row = await readRecord(tx, organization, project, id);
  if (!row || row.state !== 'live' || row.deleted_at !== null) return undefined;
  return allocationOf(row, await readLines(tx, organization, id));
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
  const lines = await readLinesOf(tx, organization, page.items.map((row) => row.id));
  return {
    items: page.items.map((row) => allocationOf(row, lines.get(row.id) ?? [])),
    nextCursor: page.nextCursor,
  };
}
