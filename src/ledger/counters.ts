/**
 * The usage counters: one row per organization and kind (`quota_counters`), holding the
 * quota and the committed, reserved and held totals of every live allocation and pending hold.
 * A decision changes them with one conditional UPDATE per kind, in kind order, inside its
 * transaction: the row lock that UPDATE takes is what serializes decisions on the same
 * organization and kind, in this process and in every other one on the same database.
 */
import { assert } from '../domain/assert.js';
import { quantityMax } from '../domain/constants.js';
import { allows, effectiveLimit, type Delta, violationOf } from '../domain/decision.js';
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
}

export const usedOf = (row: CounterRow) => row.committed + row.reserved + row.held;

const raise = `UPDATE quota_counters
  SET committed = committed + ?, reserved = reserved + ?, held = held + ?, updated_at = ?
  WHERE organization_id = ? AND kind = ?
    AND committed + reserved + held + ? <= COALESCE(quota, kind_default, ?)`;

const lower = `UPDATE quota_counters
  SET committed = committed + ?, reserved = reserved + ?, held = held + ?, updated_at = ?
  WHERE organization_id = ? AND kind = ?`;

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

export async function lockCounter(
  tx: Executor,
  dialect: Dialect,
  organization: string,
  kind: string,
): Promise<CounterRow | undefined> {
  return tx.get<CounterRow>(
    `SELECT quota, kind_default, quota_generation, committed, reserved, held FROM quota_counters
      WHERE organization_id = ? AND kind = ?${dialect.lockRowsSuffix}`,
    [organization, kind],
  );
}

/**
 * Applies `deltas` (sorted by kind) to the organization's counters, or throws
 * `quota-exceeded` naming every kind that would go over its limit. On a throw the caller's
 * transaction rolls back, so the counters it already moved are undone.
 */
export async function applyDeltas(
  context: WriteContext,
  organization: string,
  deltas: readonly Delta[],
): Promise<void> {
  const { tx, dialect } = context;
  const violations: Violation[] = [];
  for (const delta of deltas) {
    if (await applyDelta(context, organization, delta)) continue;
    // Refused. Lock the row and judge again from what it holds now, so the denial names the
    // numbers that refused it (and a quota raised in between is not wrongly refused).
    const row = await lockCounter(tx, dialect, organization, delta.kind);
    assert(row !== undefined, 'applyDelta leaves the counter row in place');
    const limit = effectiveLimit(row.quota, row.kind_default);
    if (allows(usedOf(row), delta.used, limit)) {
      assert(await applyDelta(context, organization, delta), 'locked row allows');
    } else {
      violations.push(violationOf(delta.kind, usedOf(row), delta.used, limit));
    }
  }
  if (violations.length > 0) {
    const summary = violations
      .map((v) => `${v.kind}: ${v.used} used + ${v.requested} requested > ${v.limit}`)
      .join('; ');
    throw new AllotError('quota-exceeded', `quota exceeded (${summary})`, { violations });
  }
}

/**
 * Moves the counters and journals the change. On PostgreSQL a one-kind change that is the
 * transaction's only journal entry does both in one statement: the counter row — the lock
 * every concurrent decision on this kind waits for — is then held for one round trip and the
 * commit, as in the bare engine's minimal transaction. Anything else, or a refusal, takes the
 * general path, which also names the violations.
 */
export async function applyDeltasAndJournal(
  context: WriteContext,
  organization: string,
  deltas: readonly Delta[],
  entry: JournalInput,
): Promise<void> {
  const delta = deltas[0];
  if (context.dialect.supportsDataModifyingCte && deltas.length === 1 && context.journal.length === 0) {
    const moved = await context.tx.run(
      `WITH moved AS (UPDATE quota_counters
          SET committed = committed + ?, reserved = reserved + ?, held = held + ?, updated_at = ?
          WHERE organization_id = ? AND kind = ?
            AND (CAST(? AS BIGINT) <= 0 OR committed + reserved + held + ? <= COALESCE(quota, kind_default, ?))
          RETURNING 1),
        ${journalCteSql(' AND EXISTS (SELECT 1 FROM moved)')}`,
      [
        delta!.committed,
        delta!.reserved,
        delta!.held,
        context.nowMs,
        organization,
        delta!.kind,
        delta!.used,
        delta!.used,
        quantityMax,
        ...journalCteParams(context, entry),
      ],
    );
    if (moved === 1) return;
  }
  await applyDeltas(context, organization, deltas);
  appendJournal(context, entry);
}

async function applyDelta(context: WriteContext, organization: string, delta: Delta): Promise<boolean> {
  const { tx, nowMs } = context;
  const moves = [delta.committed, delta.reserved, delta.held, nowMs, organization, delta.kind];
  const update = () =>
    delta.used <= 0
      ? tx.run(lower, moves)
      : tx.run(raise, [...moves, delta.used, quantityMax]);
  if ((await update()) === 1) return true;
  // No row matched: either the organization has never used this kind, or the limit refused.
  if (await ensureCounter(context, organization, delta.kind, nowMs)) return (await update()) === 1;
  return false;
}
