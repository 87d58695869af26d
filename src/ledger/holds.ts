/**
 * Holds: pending allocations that count as used at once (as `held`) and resolve exactly once —
 * confirmed (in full or in part) into a live allocation with the same id, released, or expired.
 * Expiry needs no request: every decision first resolves its organization's expired holds in
 * its own transaction, so no decision ever counts one; a background sweeper resolves the rest.
 */
import { confirmExceeding, deltasBetween, sumDeltas, usageOf, type Delta, type Line } from '../domain/decision.js';
import { expiredHoldsPerDecisionMax, sweepHoldsPerPassMax } from '../domain/constants.js';
import { AllotError, notFound } from '../domain/errors.js';
import type { Executor } from '../store/store.js';
import type { WriteContext } from './context.js';
import {
  applyDeltas,
  applyDeltasAndJournal,
  counterKeysOf,
  lockCountersInOrder,
  type CounterKey,
  type ProjectDeltas,
} from './counters.js';
import { appendJournal } from './journal.js';
import { precheckCreate } from './precheck.js';
import { decodeCursor, pageOf } from './pages.js';
import {
  checkGeneration,
  holdOf,
  holdStatusOf,
  insertRecord,
  readLines,
  readLinesOf,
  readRecord,
  replaceLines,
  updateRecord,
  wasHold,
  type AllocationRow,
} from './records.js';
import { lockProject, requireProject } from './tenants.js';
import type { CheckedHoldInput, Hold, Page, PageRequest } from './types.js';

/** A confirm or release either resolves the hold, or finds it already resolved. */
export type Resolution = { resolved: true; hold: Hold } | { resolved: false; hold: Hold };

export async function createHold(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
  input: CheckedHoldInput,
): Promise<Hold> {
  const { tx, nowMs } = context;
  const kinds = input.allocations.map((l) => l.kind);
  const { holdExpired } = await precheckCreate(context, organization, project, kinds, input.resource, nowMs);
  const due = holdExpired ? await resolveDueHolds(context, organization) : noneDue;
  const deltas = deltasBetween([], usageOf(input.allocations, 'held'));
  const row = await insertRecord(
    context,
    {
      id,
      organization_id: organization,
      project_id: project,
      state: 'held',
      expires_at: nowMs + input.ttlSeconds * 1000,
    },
    input.resource,
    input.allocations,
  );
  const hold = holdOf(row, input.allocations, nowMs);
  await freeDueHolds(context, organization, due, counterKeysOf([{ project, deltas }]));
  await applyDeltasAndJournal(context, organization, project, deltas, {
    organization,
    project,
    action: 'hold.created',
    subject: id,
    changes: { resource: hold.resource, held: hold.allocations, expiresAt: hold.expiresAt },
    deltas,
  });
  return hold;
}

/**
 * Confirms a pending hold as a live allocation of `confirmed` (all it holds when absent);
 * what is held beyond that is freed. Usage never rises, so a confirm passes even when the
 * organization is over its limit.
 */
export async function confirmHold(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
  confirmed: readonly Line[] | undefined,
  ifGeneration: number | undefined,
): Promise<Resolution> {
  const { tx } = context;
  const pending = await lockPending(context, organization, project, id);
  if (!pending.pending) return { resolved: false, hold: pending.hold };
  const { row, held, due } = pending;
  checkGeneration(row, ifGeneration);
  const lines = confirmed ?? held;
  const exceeding = confirmExceeding(held, lines);
  if (exceeding !== null) {
    throw new AllotError(
      'confirm-exceeds-hold',
      `kind "${exceeding}": a hold can be confirmed for at most what it holds`,
    );
  }
  const deltas = deltasBetween(usageOf(held, 'held'), usageOf(lines, 'live'));
  const next = await updateRecord(context, row, {
    state: 'live',
    resolution: 'confirmed',
    resolved_at: context.nowMs,
  });
  await replaceLines(tx, id, lines);
  const hold = holdOf(next, lines, context.nowMs);
  await freeDueHolds(context, organization, due, counterKeysOf([{ project, deltas }]));
  await applyDeltasAndJournal(context, organization, project, deltas, {
    organization,
    project,
    action: 'hold.confirmed',
    subject: id,
    changes: { resource: hold.resource, held, confirmed: hold.allocations },
    deltas,
  });
  return { resolved: true, hold };
}

export async function releaseHold(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
  ifGeneration: number | undefined,
): Promise<Resolution> {
  const pending = await lockPending(context, organization, project, id);
  if (!pending.pending) return { resolved: false, hold: pending.hold };
  const { row, held, due } = pending;
  checkGeneration(row, ifGeneration);
  const deltas = deltasBetween(usageOf(held, 'held'), []);
  const next = await updateRecord(context, row, {
    resolution: 'released',
    resolved_at: context.nowMs,
    deleted_at: context.nowMs,
  });
  await freeDueHolds(context, organization, due, counterKeysOf([{ project, deltas }]));
  await applyDeltasAndJournal(context, organization, project, deltas, {
    organization,
    project,
    action: 'hold.released',
    subject: id,
    changes: { resource: { kind: row.resource_kind, id: row.resource_id }, held },
    deltas,
  });
  return { resolved: true, hold: holdOf(next, held, context.nowMs) };
}

type Pending = { pending: true; row: AllocationRow; held: Line[]; due: DueHolds } | { pending: false; hold: Hold };

const noneDue: DueHolds = { count: 0, changes: [] };

/**
 * Locks a hold that is still pending. First resolves the organization's expired holds (this
 * one included), so a confirm after expiry finds it expired — and that expiry commits even
 * though the confirm is refused. The expired holds' counters are freed by the caller, with
 * its own, in the global lock order.
 */
async function lockPending(
  context: WriteContext,
  organization: string,
  project: string,
  id: string,
): Promise<Pending> {
  const { tx, nowMs } = context;
  await lockProject(context, organization, project);
  const { target: row, ...due } = await resolveDueHolds(context, organization, { project, id });
  if (!row || !wasHold(row)) throw notFound(`hold "${id}"`);
  const held = await readLines(tx, id);
  if (holdStatusOf(row, nowMs) !== 'pending') {
    await freeDueHolds(context, organization, due, []);
    return { pending: false, hold: holdOf(row, held, nowMs) };
  }
  return { pending: true, row, held, due };
}

/**
 * Resolves the organization's pending holds whose time has passed: frees what they hold and
 * journals each one. Runs first in every transaction that changes the organization's usage,
 * so no decision counts an expired hold. `alsoLock` names the counter rows the caller will
 * move afterwards: all are locked together in the global order first (see
 * lockCountersInOrder), so resolving holds of other kinds and projects never makes the caller
 * take a lock out of order.
 */
export async function expireDueHolds(
  context: WriteContext,
  organization: string,
  alsoLock: readonly CounterKey[] = [],
): Promise<number> {
  const due = await resolveDueHolds(context, organization);
  await freeDueHolds(context, organization, due, alsoLock);
  return due.count;
}

/** Holds resolved as expired in this transaction, whose counters are still to be freed. */
export interface DueHolds {
  count: number;
  changes: ProjectDeltas[];
}

/**
 * The first half of expiry: locks the organization's due holds — with the record the caller
 * is about to change (`target`), in one statement in id order, so two transactions never
 * lock two records in opposite orders — marks each due hold expired and journals it. Their
 * counters move in `freeDueHolds`, which a decision calls just before it moves its own, after
 * it has written its own rows (as a decision without expired holds does: rows first,
 * counters last). Returns the target as it is after the expiries (undefined if not found).
 */
export async function resolveDueHolds(
  context: WriteContext,
  organization: string,
  target?: { project: string; id: string },
): Promise<DueHolds & { target?: AllocationRow }> {
  const { tx, dialect, nowMs } = context;
  // The outer conditions are checked again on a row that changed while this waited for its
  // lock (PostgreSQL READ COMMITTED), so a hold another transaction resolved drops out.
  const rows = await tx.all<AllocationRow>(
    `SELECT * FROM allocations WHERE organization_id = ?
      AND (id IN (SELECT id FROM allocations WHERE organization_id = ? AND state = 'held'
          AND deleted_at IS NULL AND expires_at <= ? ORDER BY id LIMIT ?) OR (id = ? AND project_id = ?))
      AND ((state = 'held' AND deleted_at IS NULL AND expires_at <= ?) OR (id = ? AND project_id = ?))
      ORDER BY id${dialect.lockRowsSuffix}`,
    [
      organization,
      organization,
      nowMs,
      expiredHoldsPerDecisionMax,
      target?.id ?? null,
      target?.project ?? null,
      nowMs,
      target?.id ?? null,
      target?.project ?? null,
    ],
  );
  let targetRow = rows.find((row) => row.id === target?.id && row.project_id === target?.project);
  const dueRows = rows.filter((row) => row.state === 'held' && row.deleted_at === null && row.expires_at! <= nowMs);
  if (dueRows.length === 0) return { count: 0, changes: [], target: targetRow };
  const lines = await readLinesOf(tx, dueRows.map((row) => row.id));
  const perProject = new Map<string, Delta[]>();
  for (const row of dueRows) {
    const held = lines.get(row.id) ?? [];
    const deltas = deltasBetween(usageOf(held, 'held'), []);
    perProject.set(row.project_id, [...(perProject.get(row.project_id) ?? []), ...deltas]);
    const resolved = await updateRecord(context, row, {
      resolution: 'expired',
      resolved_at: nowMs,
      deleted_at: nowMs,
    });
    if (row === targetRow) targetRow = resolved;
    appendJournal(context, {
      organization,
      project: row.project_id,
      action: 'hold.expired',
      subject: row.id,
      changes: {
        resource: { kind: row.resource_kind, id: row.resource_id },
        held,
        expiredAt: new Date(row.expires_at!).toISOString(),
      },
      deltas,
    });
  }
  const changes = [...perProject].map(([project, deltas]) => ({ project, deltas: sumDeltas(deltas) }));
  return { count: dueRows.length, changes, target: targetRow };
}

/**
 * The second half: locks the due holds' counter rows and the caller's (`alsoLock`) in the
 * global order, then frees what the due holds held. Nothing to do when none were due.
 */
export async function freeDueHolds(
  context: WriteContext,
  organization: string,
  due: DueHolds,
  alsoLock: readonly CounterKey[],
): Promise<void> {
  if (due.count === 0) return;
  await lockCountersInOrder(context, organization, [...counterKeysOf(due.changes), ...alsoLock]);
  await applyDeltas(context, organization, due.changes);
}

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
  return holdOf(row, await readLines(tx, id), nowMs);
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
  const lines = await readLinesOf(tx, result.items.map((row) => row.id));
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
          FROM allocations a JOIN allocation_lines l ON l.allocation_id = a.id
          WHERE a.organization_id = ? AND a.state = 'held' AND a.deleted_at IS NULL AND a.expires_at <= ?
          -- kind first: grouped by project first, SQLite walks allocations_by_project for its
          -- order (every allocation of the organization) instead of the pending-expiry index.
          GROUP BY l.kind, a.project_id) x
      LEFT JOIN project_counters pc
        ON pc.organization_id = ? AND pc.project_id = x.project_id AND pc.kind = x.kind`,
    [organization, nowMs, organization],
  );
}
