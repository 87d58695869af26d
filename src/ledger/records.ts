/**
 * Rows of the `allocations` table (live allocations and holds) and their lines: reading,
 * locking, writing, and turning them into the public types.
 */
import type { Line } from '../domain/decision.js';
import { AllotError } from '../domain/errors.js';
import type { Executor } from '../store/store.js';
import type { WriteContext } from './context.js';
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

/** Inserts a new live allocation or pending hold with its lines. */
export async function insertRecord(
  { tx, dialect, nowMs, principal }: WriteContext,
  row: Pick<AllocationRow, 'id' | 'organization_id' | 'project_id' | 'state' | 'expires_at'>,
  resource: ResourceRef,
  lines: readonly Line[],
): Promise<AllocationRow> {
  const full: AllocationRow = {
    ...row,
    resource_kind: resource.kind,
    resource_id: resource.id,
    resolution: null,
    resolved_at: null,
    generation: 1,
    created_by: principal,
    updated_by: principal,
    created_at: nowMs,
    updated_at: nowMs,
    deleted_at: null,
  };
  const insertRow = `INSERT INTO allocations (id, organization_id, project_id, resource_kind,
      resource_id, state, expires_at, resolution, resolved_at, generation, created_by, updated_by,
      created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, 1, ?, ?, ?, ?, NULL)`;
  const rowParams = [
    full.id,
    full.organization_id,
    full.project_id,
    full.resource_kind,
    full.resource_id,
    full.state,
    full.expires_at,
    principal,
    principal,
    nowMs,
    nowMs,
  ];
  if (dialect.supportsDataModifyingCte) {
    // The row and its lines in one round trip.
    await tx.run(
      `WITH a AS (${insertRow} RETURNING id)
        INSERT INTO allocation_lines (allocation_id, kind, committed, reserved)
        SELECT a.id, v.kind, v.committed, v.reserved FROM a, (VALUES ${lines
          .map(() => '(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT))')
          .join(', ')}) AS v (kind, committed, reserved)`,
      [...rowParams, ...lines.flatMap((line) => [line.kind, line.committed, line.reserved])],
    );
    return full;
  }
  await tx.run(insertRow, rowParams);
  await insertLines(tx, full.id, lines);
  return full;
}

/** Applies `changes` to a locked row, bumps its generation, and returns the row as written. */
export async function updateRecord(
  { tx, nowMs, principal }: WriteContext,
  row: AllocationRow,
  changes: Partial<Pick<AllocationRow, 'resource_kind' | 'resource_id' | 'state' | 'expires_at' | 'resolution' | 'resolved_at' | 'deleted_at'>>,
): Promise<AllocationRow> {
  const next: AllocationRow = {
    ...row,
    ...changes,
    generation: row.generation + 1,
    updated_by: principal,
    updated_at: nowMs,
  };
  await tx.run(
    `UPDATE allocations SET resource_kind = ?, resource_id = ?, state = ?, expires_at = ?,
      resolution = ?, resolved_at = ?, deleted_at = ?, generation = ?, updated_by = ?,
      updated_at = ? WHERE id = ?`,
    [
      next.resource_kind,
      next.resource_id,
      next.state,
      next.expires_at,
      next.resolution,
      next.resolved_at,
      next.deleted_at,
      next.generation,
      next.updated_by,
      next.updated_at,
      row.id,
    ],
  );
  return next;
}

export async function replaceLines(tx: Executor, id: string, lines: readonly Line[]): Promise<void> {
  await tx.run('DELETE FROM allocation_lines WHERE allocation_id = ?', [id]);
  await insertLines(tx, id, lines);
}

async function insertLines(tx: Executor, id: string, lines: readonly Line[]): Promise<void> {
  if (lines.length === 0) return;
  await tx.run(
    `INSERT INTO allocation_lines (allocation_id, kind, committed, reserved)
      VALUES ${lines.map(() => '(?, ?, ?, ?)').join(', ')}`,
    lines.flatMap((line) => [id, line.kind, line.committed, line.reserved]),
  );
}

export async function readLines(tx: Executor, id: string): Promise<Line[]> {
  return (await readLinesOf(tx, [id])).get(id) ?? [];
}

export async function readLinesOf(tx: Executor, ids: readonly string[]): Promise<Map<string, Line[]>> {
  const byAllocation = new Map<string, Line[]>();
  if (ids.length === 0) return byAllocation;
  const rows = await tx.all<LineRow>(
    `SELECT allocation_id, kind, committed, reserved FROM allocation_lines
      WHERE allocation_id IN (${ids.map(() => '?').join(', ')}) ORDER BY allocation_id, kind`,
    ids,
  );
  for (const row of rows) {
    const lines = byAllocation.get(row.allocation_id) ?? [];
    lines.push({ kind: row.kind, committed: row.committed, reserved: row.reserved });
    byAllocation.set(row.allocation_id, lines);
  }
  return byAllocation;
}

/** The id of the live allocation or pending hold of a referenced resource, if there is one. */
export async function findLiveRecordId(
  tx: Executor,
  organization: string,
  resource: ResourceRef,
): Promise<string | undefined> {
  const row = await tx.get<{ id: string }>(
    `SELECT id FROM allocations WHERE organization_id = ? AND resource_kind = ? AND resource_id = ?
      AND deleted_at IS NULL`,
    [organization, resource.kind, resource.id],
  );
  return row?.id;
}

export function duplicateAllocation(resource: ResourceRef, existingId: string): AllotError {
  return new AllotError(
    'duplicate-allocation',
    `resource ${resource.kind}/${resource.id} already has allocation ${existingId}`,
    { existingAllocationId: existingId },
  );
}

export async function refuseDuplicate(
  tx: Executor,
  organization: string,
  resource: ResourceRef,
  ownId: string | null,
): Promise<void> {
  const existing = await findLiveRecordId(tx, organization, resource);
  if (existing !== undefined && existing !== ownId) throw duplicateAllocation(resource, existing);
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
