/**
 * The usage counters, at two levels. `quota_counters`: one row per organization and kind, with
 * the quota, the committed, reserved and held totals, the sum of the projects' guarantees and
 * their shortfall (what the guarantees keep back unused). `project_counters`: one row per
 * project and kind, with the project's cap, guarantee and usage.
 *
 * A decision moves them with conditional UPDATEs inside its transaction, kind by kind in kind
 * order, and in each kind the project rows (in project order) before the organization's row.
 * The row locks those UPDATEs take are what serialize decisions on the same project and kind,
 * and on the same organization and kind, in this process and in every other one on the same
 * database; the one global order means two decisions never deadlock on each other.
 */
import { assert } from '../domain/assert.js';
import { quantityMax } from '../domain/constants.js';
import { effectiveLimit, refusals, shortfallOf, type Delta } from '../domain/decision.js';
import { AllotError, type Violation } from '../domain/errors.js';
import type { Dialect, Executor } from '../store/store.js';
import type { WriteContext } from './context.js';
import { appendJournal, journalCteParams, journalCteSql, type JournalInput } from './journal.js';

export interface CounterRow {
  quota: number | null;
  /** The kind's default, kept in step with resource_kinds under this row's lock. */
  kind_default: number | null;
  quota_generation: number;
  committed: number;
  reserved: number;
  held: number;
  /** The sum of the projects' guarantees of this kind. */
  guaranteed: number;
  /** The sum over projects of max(0, guaranteed - used). */
  shortfall: number;
}

export interface ProjectCounterRow {
  cap: number | null;
  guaranteed: number;
  committed: number;
  reserved: number;
  held: number;
}

export const usedOf = (row: { committed: number; reserved: number; held: number }) =>
  row.committed + row.reserved + row.held;

/** One project's share of a change: its per-kind deltas. */
export interface ProjectDeltas {
  project: string;
  deltas: readonly Delta[];
}

/**
 * Creates the counter row of a kind the organization has never used, if it is missing, with
 * the kind's default. The kind's row is share-locked while it is read, so a concurrent change
 * of the default either comes first (and is copied here) or waits and then updates this row.
 */
export async function ensureCounter(
  { tx, dialect }: Pick<WriteContext, 'tx' | 'dialect'>,
  organization: string,
  kind: string,
  nowMs: number,
): Promise<boolean> {
  const inserted = await tx.run(
    `INSERT INTO quota_counters
        (organization_id, kind, quota, kind_default, committed, reserved, held, updated_at)
      SELECT ?, name, NULL, default_quota, 0, 0, 0, ? FROM resource_kinds
        WHERE name = ?${dialect.shareRowsSuffix}
      ON CONFLICT (organization_id, kind) DO NOTHING`,
    [organization, nowMs, kind],
  );
  return inserted === 1;
}

/** Creates a project's counter row of a kind, with no cap and no guarantee, if it is missing. */
export async function ensureProjectCounter(
  tx: Executor,
  organization: string,
  project: string,
  kind: string,
  nowMs: number,
): Promise<boolean> {
  const inserted = await tx.run(
    `INSERT INTO project_counters (organization_id, project_id, kind, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (organization_id, project_id, kind) DO NOTHING`,
    [organization, project, kind, nowMs],
  );
  return inserted === 1;
}

export async function lockCounter(
  tx: Executor,
  dialect: Dialect,
  organization: string,
  kind: string,
): Promise<CounterRow | undefined> {
  return tx.get<CounterRow>(
    `SELECT quota, kind_default, quota_generation, committed, reserved, held, guaranteed, shortfall
      FROM quota_counters WHERE organization_id = ? AND kind = ?${dialect.lockRowsSuffix}`,
    [organization, kind],
  );
}

export async function lockProjectCounter(
  tx: Executor,
  dialect: Dialect,
  organization: string,
  project: string,
  kind: string,
): Promise<ProjectCounterRow | undefined> {
  return tx.get<ProjectCounterRow>(
    `SELECT cap, guaranteed, committed, reserved, held FROM project_counters
      WHERE organization_id = ? AND project_id = ? AND kind = ?${dialect.lockRowsSuffix}`,
    [organization, project, kind],
  );
}

/** A counter row: a project's (`project` set) or the organization's (`project` null). */
export interface CounterKey {
  project: string | null;
  kind: string;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Locks counter rows in the one global order of every transaction: kind by kind, in each kind
 * the projects' rows (by project) before the organization's row. Missing rows are created on
 * the way. A transaction that must lock rows of several kinds before it moves any (one that
 * resolves expired holds before its own change) calls this first, so it never waits for a row
 * that comes earlier in the order while holding a later one: no deadlock with decisions.
 */
export async function lockCountersInOrder(
  context: WriteContext,
  organization: string,
  keys: readonly CounterKey[],
): Promise<void> {
  const { tx, dialect, nowMs } = context;
  const kinds = [...new Set(keys.map((key) => key.kind))].sort(byText);
  for (const kind of kinds) {
    const projects = [
      ...new Set(keys.filter((key) => key.kind === kind && key.project !== null).map((key) => key.project!)),
    ].sort(byText);
    for (const project of projects) {
      await ensureProjectCounter(tx, organization, project, kind, nowMs);
      await lockProjectCounter(tx, dialect, organization, project, kind);
    }
    await ensureCounter(context, organization, kind, nowMs);
    await lockCounter(tx, dialect, organization, kind);
  }
}

/** The counter rows a change of these projects' deltas moves. */
export const counterKeysOf = (changes: readonly ProjectDeltas[]): CounterKey[] =>
  changes.flatMap(({ project, deltas }) => deltas.map(({ kind }) => ({ project, kind })));

const raiseProject = `UPDATE project_counters
  SET committed = committed + ?, reserved = reserved + ?, held = held + ?, updated_at = ?
  WHERE organization_id = ? AND project_id = ? AND kind = ?
    AND (CAST(? AS BIGINT) <= 0 OR committed + reserved + held + ? <= COALESCE(cap, ?))
  RETURNING guaranteed, committed + reserved + held AS used`;

// The organization's usage plus what the other projects' guarantees keep back (the shortfall
// less the changed projects' own, before the change) must stay within the limit.
const raiseOrganization = `UPDATE quota_counters
  SET committed = committed + ?, reserved = reserved + ?, held = held + ?,
    shortfall = shortfall + ?, updated_at = ?
  WHERE organization_id = ? AND kind = ?
    AND (CAST(? AS BIGINT) <= 0
      OR committed + reserved + held + ? + shortfall - ? <= COALESCE(quota, kind_default, ?))`;

/**
 * Applies each project's `deltas` to its counters and the organization's, or throws
 * `quota-exceeded` naming every kind and level that would go over its limit. On a throw the
 * caller's transaction rolls back, so the counters it already moved are undone.
 */
export async function applyDeltas(
  context: WriteContext,
  organization: string,
  changes: readonly ProjectDeltas[],
): Promise<void> {
  const projects = [...changes].sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  const kinds = [...new Set(changes.flatMap((c) => c.deltas.map((d) => d.kind)))].sort();
  const violations: Violation[] = [];
  for (const kind of kinds) {
    const total = { kind, committed: 0, reserved: 0, held: 0, used: 0 };
    let shortfallBefore = 0;
    let shortfallAfter = 0;
    let refused = false;
    for (const { project, deltas } of projects) {
      const delta = deltas.find((d) => d.kind === kind);
      if (delta === undefined) continue;
      total.committed += delta.committed;
      total.reserved += delta.reserved;
      total.held += delta.held;
      total.used += delta.used;
      let moved = await moveProject(context, organization, project, delta);
      if (moved === undefined) {
        const found = await diagnose(context, organization, project, delta, false);
        if (found.length > 0) {
          refused = true;
          violations.push(...found);
          continue;
        }
        moved = await moveProject(context, organization, project, delta);
        assert(moved !== undefined, 'the locked rows allow the change');
      }
      shortfallBefore += shortfallOf(moved.guaranteed, moved.used - delta.used);
      shortfallAfter += shortfallOf(moved.guaranteed, moved.used);
    }
    if (refused) continue;
    if (await moveOrganization(context, organization, total, shortfallBefore, shortfallAfter)) continue;
    // Refused at the organization: then the change is one project's (a change of several
    // only frees, and freeing always passes). Name the numbers that refused it.
    assert(projects.length === 1, 'only a one-project change can be refused');
    const found = await diagnose(context, organization, projects[0]!.project, total, true);
    if (found.length > 0) violations.push(...found);
    else assert(await moveOrganization(context, organization, total, shortfallBefore, shortfallAfter), 'the locked rows allow the change');
  }
  if (violations.length > 0) {
    const summary = violations
      .map((v) => `${v.kind} (${v.scope}): ${v.used} used + ${v.requested} requested > ${v.limit}`)
      .join('; ');
    throw new AllotError('quota-exceeded', `quota exceeded (${summary})`, { violations });
  }
}

/** Moves one project's counter of one kind; undefined if its cap refuses. */
async function moveProject(
  context: WriteContext,
  organization: string,
  project: string,
  delta: Delta,
): Promise<{ guaranteed: number; used: number } | undefined> {
  const { tx, nowMs } = context;
  const update = async () => {
    const row = await tx.get<{ guaranteed: number; used: number }>(raiseProject, [
      delta.committed,
      delta.reserved,
      delta.held,
      nowMs,
      organization,
      project,
      delta.kind,
      delta.used,
      delta.used,
      quantityMax,
    ]);
    return row;
  };
  const moved = await update();
  if (moved !== undefined) return moved;
  // No row matched: either the project has never used this kind, or its cap refused.
  if (await ensureProjectCounter(tx, organization, project, delta.kind, nowMs)) return update();
  return undefined;
}

async function moveOrganization(
  context: WriteContext,
  organization: string,
  total: Delta,
  shortfallBefore: number,
  shortfallAfter: number,
): Promise<boolean> {
  const { tx, nowMs } = context;
  const update = () =>
    tx.run(raiseOrganization, [
      total.committed,
      total.reserved,
      total.held,
      shortfallAfter - shortfallBefore,
      nowMs,
      organization,
      total.kind,
      total.used,
      total.used,
      shortfallBefore,
      quantityMax,
    ]);
  if ((await update()) === 1) return true;
  // No row matched: either the organization has never used this kind, or a limit refused.
  if (await ensureCounter(context, organization, total.kind, nowMs)) return (await update()) === 1;
  return false;
}

/**
 * Why a change of one project's kind is refused, judged again from the rows as they are now,
 * under their locks (empty if they allow it after all). `projectMoved`: the project's row
 * already carries the delta (its cap passed; the organization refused).
 */
async function diagnose(
  context: WriteContext,
  organization: string,
  project: string,
  delta: Delta,
  projectMoved: boolean,
): Promise<Violation[]> {
  const { tx, dialect, nowMs } = context;
  const own = await lockProjectCounter(tx, dialect, organization, project, delta.kind);
  await ensureCounter(context, organization, delta.kind, nowMs);
  const row = await lockCounter(tx, dialect, organization, delta.kind);
  assert(own !== undefined && row !== undefined, 'a refused change leaves both counter rows in place');
  const levels = {
    kind: delta.kind,
    projectUsed: usedOf(own) - (projectMoved ? delta.used : 0),
    cap: own.cap,
    guaranteed: own.guaranteed,
    organizationUsed: usedOf(row),
    limit: effectiveLimit(row.quota, row.kind_default),
    shortfall: row.shortfall,
  };
  const found = refusals(levels, delta.used);
  // The project level passed already when the project's row moved: report the others only.
  return projectMoved ? found.filter((v) => v.scope !== 'project') : found;
}

/**
 * Moves the counters and journals the change. On PostgreSQL a one-kind change that is the
 * transaction's only journal entry does it all in one statement: lock the project's counter
 * row, move the organization's counter if every level allows, then the project's, then take
 * the journal revision — all or nothing, in one round trip, so the organization's counter row
 * (the lock every concurrent decision on this kind waits for) is held for one round trip and
 * the commit. Anything else, or a refusal, takes the general path, which also names the
 * violations.
 */
export async function applyDeltasAndJournal(
  context: WriteContext,
  organization: string,
  project: string,
  deltas: readonly Delta[],
  entry: JournalInput,
): Promise<void> {
  const delta = deltas[0];
  if (context.dialect.supportsDataModifyingCte && deltas.length === 1 && context.journal.length === 0) {
    const moved = await context.tx.run(
      `WITH own AS (SELECT cap, guaranteed, committed + reserved + held AS used FROM project_counters
          WHERE organization_id = ? AND project_id = ? AND kind = ? FOR NO KEY UPDATE),
        counted AS (UPDATE quota_counters c
          SET committed = c.committed + ?, reserved = c.reserved + ?, held = c.held + ?,
            shortfall = c.shortfall + GREATEST(0, own.guaranteed - own.used - ?) - GREATEST(0, own.guaranteed - own.used),
            updated_at = ?
          FROM own
          WHERE c.organization_id = ? AND c.kind = ?
            AND (CAST(? AS BIGINT) <= 0 OR (own.used + ? <= COALESCE(own.cap, ?)
              AND c.committed + c.reserved + c.held + ? + c.shortfall - GREATEST(0, own.guaranteed - own.used)
                <= COALESCE(c.quota, c.kind_default, ?)))
          RETURNING 1),
        moved AS (UPDATE project_counters
          SET committed = committed + ?, reserved = reserved + ?, held = held + ?, updated_at = ?
          WHERE organization_id = ? AND project_id = ? AND kind = ? AND EXISTS (SELECT 1 FROM counted)
          RETURNING 1),
        ${journalCteSql(' AND EXISTS (SELECT 1 FROM moved)')}`,
      [
        organization,
        project,
        delta!.kind,
        delta!.committed,
        delta!.reserved,
        delta!.held,
        delta!.used,
        context.nowMs,
        organization,
        delta!.kind,
        delta!.used,
        delta!.used,
        quantityMax,
        delta!.used,
        quantityMax,
        delta!.committed,
        delta!.reserved,
        delta!.held,
        context.nowMs,
        organization,
        project,
        delta!.kind,
        ...journalCteParams(context, entry),
      ],
    );
    if (moved === 1) return;
  }
  await applyDeltas(context, organization, [{ project, deltas }]);
  appendJournal(context, entry);
}
