/** Webhook subscriptions and their delivery state (the sending itself is src/webhooks). */
import { readJournal, type JournalEntry } from '../journal/journal.js';
import type { Core } from '../core.js';
import {
  advanceCursor as advance,
  claimCursors as claim,
  missingCursors,
  recordFailure,
  releaseCursor as release,
  renewLease as renew,
  resumeCursors,
  type Lease,
} from './cursors.js';
import { addDenials as add, denialsKeptMs, forgetDenials as forget, readDenials as read, type DenialCount } from './denials.js';
import {
  checkSubscriptionInput,
  createSubscription,
  currentState,
  deleteSubscription,
  emptyState,
  insertCursor,
  listSubscriptions,
  lockRevision,
  readSubscription,
  type SubscriptionInput,
  type ThresholdSpec,
} from './subscriptions.js';

export const subscriptionsOf = (core: Core) => ({
  /** `organization` null: every organization's events (service-admins). The secret is in the answer, once. */
  createSubscription(organization: string | null, input: SubscriptionInput, options: { principal?: string } = {}) {
    const checked = checkSubscriptionInput(input, organization);
    return core.write(options, ({ tx, principal, nowMs }) => createSubscription(tx, organization, checked, principal, nowMs));
  },

  /** An organization's own subscriptions, or (no organization) every subscription. */
  listSubscriptions(organization?: string) {
    return core.read((tx) => listSubscriptions(tx, organization));
  },

  getSubscription(id: string, organization?: string) {
    return core.read((tx) => readSubscription(tx, id, organization));
  },

  deleteSubscription(id: string, organization?: string) {
    return core.write({}, ({ tx }) => deleteSubscription(tx, id, organization));
  },

  /** Failing or retrying deliveries go on at once, from where they stopped. */
  resumeSubscription(id: string, organization?: string) {
    return core.write({}, async ({ tx }) => {
      await readSubscription(tx, id, organization);
      await resumeCursors(tx, id);
      return readSubscription(tx, id, organization);
    });
  },

  // The delivery worker's side (src/webhooks/worker.ts).

  /**
   * Leases cursors with work for `holder` (see cursors.ts), after making the cursors that
   * subscriptions for every organization lack, each in a transaction of its own.
   * `digestsBeforeMs`: digest windows that closed before this are due.
   */
  async claimCursors(holder: string, leaseMs: number, count: number, digestsBeforeMs: number): Promise<Lease[]> {
    // A read first: a deployment with no subscriptions takes no write lock each poll.
    const any = await core.read((tx) => tx.get('SELECT id FROM subscriptions LIMIT 1'));
    if (!any) return [];
    for (const { subscription, organization, fromStart } of await core.read((tx) => missingCursors(tx))) {
      await core.write({}, async ({ tx, nowMs }) => {
        const thresholds = JSON.parse(subscription.thresholds) as ThresholdSpec[];
        // Made after the subscription: from its first entry, whose replay sets every value.
        if (fromStart) return insertCursor(tx, subscription.id, organization, 0, emptyState(thresholds), nowMs);
        const revision = await lockRevision(tx, organization);
        return insertCursor(tx, subscription.id, organization, revision, await currentState(tx, organization, thresholds), nowMs);
      });
    }
    return core.write({}, ({ tx, dialect, nowMs }) => claim(tx, dialect, holder, nowMs, leaseMs, count, digestsBeforeMs));
  },
  cursorEntries(organization: string, afterRevision: number, limit: number): Promise<JournalEntry[]> {
    return core.read((tx) => readJournal(tx, organization, afterRevision, limit));
  },
  /** The kinds' defaults now (an organization's limit where it set no quota). */
  kindDefaults(): Promise<Map<string, number | null>> {
    return core.read(async (tx) => {
      const rows = await tx.all<{ name: string; default_quota: number | string | null }>('SELECT name, default_quota FROM resource_kinds');
      return new Map(rows.map((row) => [row.name, row.default_quota === null ? null : Number(row.default_quota)]));
    });
  },
  advanceCursor(lease: Lease, leaseMs: number, delivered: boolean): Promise<boolean> {
    return core.write({}, ({ tx, nowMs }) => advance(tx, lease, nowMs, leaseMs, delivered));
  },
  renewLease(lease: Lease, leaseMs: number): Promise<boolean> {
    return core.write({}, ({ tx, nowMs }) => renew(tx, lease, nowMs, leaseMs));
  },
  failCursor(lease: Lease, error: string, retryAtMs: number, failing: boolean) {
    return core.write({}, ({ tx, nowMs }) => recordFailure(tx, lease, error, nowMs, retryAtMs, failing));
  },
  releaseCursor(lease: Lease) {
    return core.write({}, ({ tx }) => release(tx, lease));
  },
  readDenials(organization: string, fromMs: number, toMs: number) {
    return core.read((tx) => read(tx, organization, fromMs, toMs));
  },
  /** Adds refusal counts for the digests; none are kept while no subscription asks for a digest. */
  async addDenials(counts: readonly DenialCount[]): Promise<void> {
    const wanted = await core.read((tx) => tx.get('SELECT id FROM subscriptions WHERE denials_interval_ms IS NOT NULL LIMIT 1'));
    if (wanted) await core.write({}, ({ tx }) => add(tx, counts));
  },
  forgetDenials() {
    return core.write({}, ({ tx, nowMs }) => forget(tx, nowMs - denialsKeptMs));
  },
  /** Failing cursors now, for `allot_webhook_subscriptions_failing`. */
  failingSubscriptions(): Promise<number> {
    return core.read(async (tx) => {
      const row = await tx.get<{ n: number | string }>(
        'SELECT COUNT(DISTINCT subscription_id) AS n FROM subscription_cursors WHERE failing_since IS NOT NULL',
      );
      return Number(row?.n ?? 0);
    });
  },
});
