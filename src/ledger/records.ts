/**
 * Rows of the `allocations` table (live allocations and holds) and their lines: reading,
 * locking, writing, and turning them into the public types.
 */
import type { Line } from '../domain/decision.js';
import { AllotError } from '../domain/errors.js';
import type { Executor } from '../store/store.js';
import { isoOf } from './time.js';
import type { Allocation, Hold, HoldStatus, ResourceRef } from './types.js';

export interface AllocationRow {
  id: string;
  organization_id: string;
  project_id: string;
  resource_kind: string;
  resource_id: string;
  state: 'live' | 'held';
  expires_at: number | null;
  resolution: 'confirmed' | 'released' | 'expired' | null;
  resolved_at: number | null;
  generation: number;
  created_by: string;
  updated_by: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

interface LineRow extends Line {
  allocation_id: string;
}

export function readRecord(
  tx: Executor,
  organization: string,
  project: string,
  id: string,
): Promise<AllocationRow | undefined> {
  return tx.get<AllocationRow>(
    'SELECT * FROM allocations WHERE id = ? AND organization_id = ? AND project_id = ?',
    [id, organization, project],
  );
}

export async function readLines(tx: Executor, organization: string, id: string): Promise<Line[]> {
  return (await readLinesOf(tx, organization, [id])).get(id) ?? [];
}

/** The lines of allocations of one organization. */
export async function readLinesOf(tx: Executor, organization: string, ids: readonly string[]): Promise<Map<string, Line[]>> {
  const byAllocation = new Map<string, Line[]>();
  if (ids.length === 0) return byAllocation;
  const rows = await tx.all<LineRow>(
    `SELECT allocation_id, kind, committed, reserved FROM allocation_lines
      WHERE organization_id = ? AND allocation_id IN (${ids.map(() => '?').join(', ')}) ORDER BY allocation_id, kind`,
    [organization, ...ids],
  );
  for (const row of rows) {
    const lines = byAllocation.get(row.allocation_id) ?? [];
    lines.push({ kind: row.kind, committed: row.committed, reserved: row.reserved });
    byAllocation.set(row.allocation_id, lines);
  }
  return byAllocation;
}

export function duplicateAllocation(resource: ResourceRef, existingId: string): AllotError {
  return new AllotError(
    'duplicate-allocation',
    `resource ${resource.kind}/${resource.id} already has allocation ${existingId}`,
    { existingAllocationId: existingId },
  );
}

/** If-Match: refuses the change when the caller's generation is not the current one. */
export function checkGeneration(row: { generation: number }, ifGeneration: number | undefined): void {
  if (ifGeneration === undefined || ifGeneration === row.generation) return;
  throw new AllotError(
    'precondition-failed',
    `the generation is ${row.generation}, not ${ifGeneration}`,
    { currentGeneration: row.generation },
  );
}

const byKind = (a: Line, b: Line) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);

export function allocationOf(row: AllocationRow, lines: readonly Line[]): Allocation {
  return {
    id: row.id,
    organization: row.organization_id,
    project: row.project_id,
    resource: { kind: row.resource_kind, id: row.resource_id },
    allocations: [...lines].sort(byKind).map(({ kind, committed, reserved }) => ({ kind, committed, reserved })),
    generation: row.generation,
    createdBy: row.created_by,
    updatedBy: row.updated_by,
    createdAt: isoOf(row.created_at),
    updatedAt: isoOf(row.updated_at),
  };
}

/** A hold's status at `nowMs`: a pending hold past its expiry is expired, swept or not. */
export function holdStatusOf(row: AllocationRow, nowMs: number): HoldStatus {
  if (row.resolution !== null) return row.resolution;
  return row.expires_at !== null && row.expires_at <= nowMs ? 'expired' : 'pending';
}

export function holdOf(row: AllocationRow, lines: readonly Line[], nowMs: number): Hold {
  return {
    ...allocationOf(row, lines),
    status: holdStatusOf(row, nowMs),
    expiresAt: isoOf(row.expires_at ?? row.created_at),
    resolvedAt: row.resolved_at === null ? null : isoOf(row.resolved_at),
  };
}

/** A row that is, or was, a hold: created pending, whatever happened to it since. */
export const wasHold = (row: AllocationRow) => row.state === 'held' || row.resolution === 'confirmed';
