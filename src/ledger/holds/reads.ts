/**
 * Reading holds: pending allocations that count as used at once (as `held`) and resolve
 * exactly once — confirmed, released or expired. Every group of decisions first resolves its
 * organizations' expired holds (engine/), so no decision counts one; the sweeper resolves the
 * rest. Reads leave expired holds out whether or not they are resolved yet.
 */
import { sweepHoldsPerPassMax } from '../../domain/constants.js';
import { notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';

import { decodeCursor, pageOf } from '../pages.js';
import {
  holdOf,
  readLines,
  readLinesOf,
  readRecord,
  wasHold,
  type AllocationRow,
} from '../records.js';
import { requireProject } from '../catalog/tenants.js';
import type { Hold, Page, PageRequest } from '../types.js';

/** Organizations that have expired pending holds, for the sweeper. */
export async function organizationsWithExpiredHolds(tx: Executor, nowMs: number): Promise<string[]> {
  const rows = await tx.all<{ organization_id: string }>(
    `SELECT DISTINCT organization_id FROM allocations
      WHERE state = 'held' AND deleted_at IS NULL AND expires_at <= ? LIMIT ?`,
    [nowMs, sweepHoldsPerPassMax],
  );
  return rows.map((row) => row.organization_id);
}

export async function readHold(
  tx: Executor,
  organization: string,
  project: string,
  id: string,
  nowMs: number,
): Promise<Hold> {
  await requireProject(tx, organization, project);
  const row = await readRecord(tx, organization, project, id);
  if (!row || !wasHold(row)) throw notFound(`hold "${id}"`);
  return holdOf(row, await readLines(tx, organization, id), nowMs);
}

/** The project's pending holds (not yet confirmed, released or expired). */
export async function listHolds(
  tx: Executor,
  organization: string,
  project: string,
  page: PageRequest,
  limit: number,
  nowMs: number,
): Promise<Page<Hold>> {
  await requireProject(tx, organization, project);
  const after = decodeCursor(page.cursor);
  const rows = await tx.all<AllocationRow>(
    `SELECT * FROM allocations WHERE organization_id = ? AND project_id = ? AND state = 'held'
      AND deleted_at IS NULL AND expires_at > ? AND id > ? ORDER BY id LIMIT ?`,
    [organization, project, nowMs, after ?? '', limit + 1],
  );
  const result = pageOf(rows, limit, (row) => row.id);
  const lines = await readLinesOf(tx, organization, result.items.map((row) => row.id));
  return {
    items: result.items.map((row) => holdOf(row, lines.get(row.id) ?? [], nowMs)),
    nextCursor: result.nextCursor,
  };
}

/**
 * Per project and kind, what the organization's expired but unresolved holds hold, with the
 * project's guarantee and booked usage of the kind: reads leave these holds out (as the next
 * decision will), which also changes what the project's guarantee keeps back.
 */
export async function expiredHeldOf(
  tx: Executor,
  organization: string,
  nowMs: number,
): Promise<{ project: string; kind: string; held: number; guaranteed: number; used: number }[]> {
  return tx.all(
    `SELECT x.project_id AS project, x.kind, x.held, COALESCE(pc.guaranteed, 0) AS guaranteed,
        COALESCE(pc.committed + pc.reserved + pc.held, 0) AS used
      FROM (SELECT a.project_id, l.kind, CAST(SUM(l.committed + l.reserved) AS BIGINT) AS held
          FROM allocations a JOIN allocation_lines l ON l.allocation_id = a.id AND l.organization_id = a.organization_id
          WHERE a.organization_id = ? AND a.state = 'held' AND a.deleted_at IS NULL AND a.expires_at <= ?
          -- kind first: grouped by project first, SQLite walks allocations_by_project for its
          -- order (every allocation of the organization) instead of the pending-expiry index.
          GROUP BY l.kind, a.project_id) x
      LEFT JOIN project_counters pc
        ON pc.organization_id = ? AND pc.project_id = x.project_id AND pc.kind = x.kind`,
    [organization, nowMs, organization],
  );
}
