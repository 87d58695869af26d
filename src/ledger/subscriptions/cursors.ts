/**
 * Where each subscription's delivery stands in each organization. A process delivers a cursor
 * only while it holds the cursor's lease (claimed by one UPDATE whose WHERE is checked again
 * on the row it locks, so two processes never both win it); every write of a cursor checks
 * the lease is still its own, so a process that stalled past its lease changes nothing.
 */
import type { Static } from '@sinclair/typebox';
import type * as wire from '../../schemas/index.js';
import type { Dialect, Executor } from '../../store/store.js';
import { isoOf } from '../time.js';
import type { CursorState, SubscriptionRow } from './subscriptions.js';

export type Delivery = Static<typeof wire.Delivery>;

export interface CursorRow {
  subscription_id: string;
  organization_id: string;
  revision: number | string;
  state: string;
  digest_from: number | string;
  attempts: number | string;
  next_attempt_at: number | string;
  failing_since: number | string | null;
  last_error: string | null;
  delivered_at: number | string | null;
  leased_by: string | null;
  leased_until: number | string;
}

const timeOf = (ms: number | string | null) => (ms === null ? null : isoOf(Number(ms)));

export function deliveryOf(row: CursorRow): Delivery {
  const attempts = Number(row.attempts);
  return {
    organization: row.organization_id,
    revision: Number(row.revision),
    state: row.failing_since !== null ? 'failing' : attempts > 0 ? 'retrying' : 'active',
    attempts,
    nextAttemptAt: attempts > 0 && row.failing_since === null ? timeOf(row.next_attempt_at) : null,
    failingSince: timeOf(row.failing_since),
    lastError: row.last_error,
    deliveredAt: timeOf(row.delivered_at),
  };
}

/** A leased cursor with its subscription, as the delivery worker works on it. */
export interface Lease {
  subscription: SubscriptionRow;
  organization: string;
  revision: number;
  state: CursorState;
  digestFrom: number;
  attempts: number;
  holder: string;
}

const key = 'subscription_id = ? AND organization_id = ?';

/**
 * Leases up to `count` cursors that have work: journal entries after their revision, or a
 * denial digest window closed before `digestsBeforeMs`; not failing, not waiting for a retry,
 * not leased by a live holder. The least recently served first, so one busy organization
 * does not keep the others waiting; PostgreSQL skips rows another process is claiming.
 */
export async function claimCursors(
  tx: Executor,
  dialect: Dialect,
  holder: string,
  nowMs: number,
  leaseMs: number,
  count: number,
  digestsBeforeMs: number,
): Promise<Lease[]> {
  const due = `c.failing_since IS NULL AND c.next_attempt_at <= ? AND c.leased_until <= ?
    AND (c.revision < (SELECT o.revision FROM organizations o WHERE o.id = c.organization_id)
      OR EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = c.subscription_id
        AND s.denials_interval_ms IS NOT NULL AND c.digest_from + s.denials_interval_ms <= ?))`;
  const skip = dialect.concurrentWrites ? ' FOR UPDATE SKIP LOCKED' : '';
  const rows = await tx.all<CursorRow>(
    `UPDATE subscription_cursors SET leased_by = ?, leased_until = ?
      WHERE (organization_id, subscription_id) IN (
        SELECT c.organization_id, c.subscription_id FROM subscription_cursors c WHERE ${due}
        ORDER BY COALESCE(c.delivered_at, 0) LIMIT ${Math.trunc(count)}${skip})
      AND failing_since IS NULL AND next_attempt_at <= ? AND leased_until <= ?
      RETURNING *`,
    [holder, nowMs + leaseMs, nowMs, nowMs, digestsBeforeMs, nowMs, nowMs],
  );
  const leases: Lease[] = [];
  for (const row of rows) {
    const subscription = await tx.get<SubscriptionRow>('SELECT * FROM subscriptions WHERE id = ?', [row.subscription_id]);
    if (!subscription) continue; // Deleted meanwhile: its cursors go with it.
    leases.push({
      subscription,
      organization: row.organization_id,
      revision: Number(row.revision),
      state: JSON.parse(row.state) as CursorState,
      digestFrom: Number(row.digest_from),
      attempts: Number(row.attempts),
      holder,
    });
  }
  return leases;
}

/**
 * Records progress up to `revision` (and the digest up to `digestFrom`) and renews the lease;
 * `delivered`: an event reached the receiver since the last record, so the failures in a row
 * start again from none. False if the lease is no longer this holder's (or the cursor is gone).
 */
export async function advanceCursor(tx: Executor, lease: Lease, nowMs: number, leaseMs: number, delivered: boolean): Promise<boolean> {
  const reset = delivered ? ', attempts = 0, next_attempt_at = 0, last_error = NULL' : '';
  const changed = await tx.run(
    `UPDATE subscription_cursors SET revision = ?, state = ?, digest_from = ?, delivered_at = ?, leased_until = ?${reset}
      WHERE ${key} AND leased_by = ?`,
    [lease.revision, JSON.stringify(lease.state), lease.digestFrom, nowMs, nowMs + leaseMs, lease.subscription.id, lease.organization, lease.holder],
  );
  return changed === 1;
}

/** Extends the lease, recording nothing; false if it is no longer this holder's (or the subscription is gone). */
export async function renewLease(tx: Executor, lease: Lease, nowMs: number, leaseMs: number): Promise<boolean> {
  const changed = await tx.run(`UPDATE subscription_cursors SET leased_until = ? WHERE ${key} AND leased_by = ?`, [
    nowMs + leaseMs,
    lease.subscription.id,
    lease.organization,
    lease.holder,
  ]);
  return changed === 1;
}

/** A failed attempt: retry at `retryAtMs`, or, with `failing`, stop until resumed. */
export async function recordFailure(tx: Executor, lease: Lease, error: string, nowMs: number, retryAtMs: number, failing: boolean) {
  await tx.run(
    `UPDATE subscription_cursors SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
      failing_since = ?, leased_until = 0 WHERE ${key} AND leased_by = ?`,
    [retryAtMs, error.slice(0, 500), failing ? nowMs : null, lease.subscription.id, lease.organization, lease.holder],
  );
}

export async function releaseCursor(tx: Executor, lease: Lease): Promise<void> {
  await tx.run(`UPDATE subscription_cursors SET leased_until = 0 WHERE ${key} AND leased_by = ?`, [
    lease.subscription.id,
    lease.organization,
    lease.holder,
  ]);
}

/**
 * Goes on from where delivery stopped: the next attempt is now. A lease is left alone: a
 * cursor being delivered stays with its holder. Returns how many cursors were resumed.
 */
export async function resumeCursors(tx: Executor, subscription: string): Promise<number> {
  return tx.run(
    `UPDATE subscription_cursors SET failing_since = NULL, attempts = 0, next_attempt_at = 0, last_error = NULL
      WHERE subscription_id = ? AND (failing_since IS NOT NULL OR attempts > 0)`,
    [subscription],
  );
}

/**
 * Cursors a subscription for every organization does not have yet: made by the workers, one
 * organization at a time, not by the subscription's own transaction (which would hold every
 * organization's row at once). `fromStart`: the organization was made after the subscription,
 * so all of its journal is sent; an older one's starts where it stands.
 */
export async function missingCursors(tx: Executor): Promise<{ subscription: SubscriptionRow; organization: string; fromStart: boolean }[]> {
  const rows = await tx.all<SubscriptionRow & { missing: string; made_at: number | string }>(
    `SELECT s.*, o.id AS missing, o.created_at AS made_at FROM subscriptions s, organizations o WHERE s.organization_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM subscription_cursors c WHERE c.subscription_id = s.id AND c.organization_id = o.id)
      ORDER BY o.id LIMIT 100`,
  );
  return rows.map(({ missing, made_at, ...subscription }) => ({
    subscription,
    organization: missing,
    fromStart: Number(made_at) > Number(subscription.created_at),
  }));
}
