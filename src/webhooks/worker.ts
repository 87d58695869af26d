/**
 * The delivery worker: leases cursors with work (ledger/subscriptions/cursors.ts), sends each
 * one's events in revision order, and records how far it got after each entry that sent any.
 * A failed delivery is retried with exponential backoff and jitter; after `attemptsMax`
 * failures in a row the cursor is failing and waits to be resumed. Every process of a
 * deployment may run one: a lease keeps each cursor with one process at a time.
 */
import { randomUUID } from 'node:crypto';
import type { Ledger } from '../ledger/ledger.js';
import type { Lease } from '../ledger/subscriptions/cursors.js';
import type { JournalFilter, ThresholdSpec } from '../ledger/subscriptions/subscriptions.js';
import type { AllowList } from './address.js';
import { digestEvent, eventsOfEntry, type Subscribed, type WebhookEvent } from './events.js';
import { DeliveryFailed, sendEvent } from './send.js';

export interface DeliveryOptions {
  allow: AllowList;
  /** One delivery's bound, connecting included (default 10 s). */
  timeoutMs?: number;
  /** Failures in a row before a subscription is failing (default 10). */
  attemptsMax?: number;
  /** The first retry's delay, doubled each time up to `backoffMaxMs` (defaults 1 s, 5 min). */
  backoffMs?: number;
  backoffMaxMs?: number;
  /** How often to look for work when this process heard of no change (default 1 s). */
  pollMs?: number;
  onError?(error: unknown): void;
  /** Each attempt's outcome, for the metrics. */
  onAttempt?(outcome: 'delivered' | 'failed'): void;
}

/**
 * How long a cursor stays with the process that leased it without news from it: a process
 * killed mid-delivery holds its cursors this long. Renewed before any send once a third of it
 * has passed, so it must outlast a few deliveries' timeouts.
 */
const leaseMsOf = (timeoutMs: number) => Math.max(3 * timeoutMs, 3000);
const entriesPerRead = 100;
const cursorsPerClaim = 8;
/** A lease's work before it goes back, so one slow receiver does not keep the others waiting. */
const leaseBudget = { events: 100, ms: 2000 };
/** How often a lease is renewed while sending: a deleted subscription stops within about this. */
const renewEveryMs = 1000;
/** Refusals are added to the books up to a second late, by any process: a window closes after this. */
const digestGraceMs = 5000;
const denialsForgetEveryMs = 3_600_000;

/** The delay before retry `attempt` (1-based): exponential, capped, with jitter over its upper half. */
export function backoffOf(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function startDeliveries(ledger: Ledger, options: DeliveryOptions): { stop(): Promise<void> } {
  const worker = new Worker(ledger, { timeoutMs: 10_000, attemptsMax: 10, backoffMs: 1000, backoffMaxMs: 300_000, pollMs: 1000, ...options });
  // run() catches what fails in it; anything that still escapes is reported, never an unhandled rejection.
  const running = worker.run().catch((error: unknown) => options.onError?.(error));
  return {
    async stop() {
      worker.stop();
      await running;
    },
  };
}

interface Progress {
  /** The revision last recorded, and when the lease was last renewed. */
  saved: number;
  renewedAtMs: number;
  /** Events delivered since the last record, and in the whole lease. */
  deliveredSinceSave: boolean;
  deliveredInLease: boolean;
  sent: number;
  startedAtMs: number;
}

/** The lease is no longer this process's (taken, or the subscription deleted): stop quietly. */
class LeaseLost extends Error {}

class Worker {
  private readonly holder = randomUUID();
  private readonly leaseMs: number;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly stopListening: () => void;

  constructor(
    private readonly ledger: Ledger,
    private readonly settings: Required<Omit<DeliveryOptions, 'onError' | 'onAttempt'>> & DeliveryOptions,
  ) {
    this.leaseMs = leaseMsOf(settings.timeoutMs);
    // A change committed here is delivered at once; others' within a poll.
    this.stopListening = ledger.onChange(() => this.wake?.());
  }

  stop(): void {
    this.stopped = true;
    this.stopListening();
    this.wake?.();
  }

  async run(): Promise<void> {
    let forgotAtMs = 0;
    while (!this.stopped) {
      let worked = false;
      try {
        const nowMs = this.ledger.clock.nowMs();
        const leases = await this.ledger.claimCursors(this.holder, this.leaseMs, cursorsPerClaim, nowMs - digestGraceMs);
        if (nowMs - forgotAtMs > denialsForgetEveryMs) {
          forgotAtMs = nowMs;
          await this.ledger.forgetDenials();
        }
        worked = (await Promise.all(leases.map((lease) => this.deliver(lease)))).some(Boolean);
      } catch (error) {
        this.settings.onError?.(error);
      }
      // Nothing done (nothing due, or only what could not move): wait for a change or a poll.
      if (!worked && !this.stopped) await this.idle();
    }
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.settings.pollMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Sends a cursor's events within the lease's budget, recording progress; never throws. True if it moved. */
  private async deliver(lease: Lease): Promise<boolean> {
    const nowMs = this.ledger.clock.nowMs();
    const progress: Progress = { saved: lease.revision, renewedAtMs: nowMs, deliveredSinceSave: false, deliveredInLease: false, sent: 0, startedAtMs: nowMs };
    const { revision: first, digestFrom: digestFirst } = lease;
    try {
      await this.entries(lease, progress);
      await this.digests(lease, progress);
      if (lease.revision !== progress.saved || progress.deliveredSinceSave) await this.save(lease, progress);
      await this.ledger.releaseCursor(lease);
      return lease.revision !== first || lease.digestFrom !== digestFirst || progress.sent > 0;
    } catch (error) {
      if (error instanceof LeaseLost) return true;
      if (!(error instanceof DeliveryFailed)) {
        this.settings.onError?.(error);
        await this.ledger.releaseCursor(lease).catch(() => {});
        return false;
      }
      await this.failed(lease, progress, error).catch((failure: unknown) => this.settings.onError?.(failure));
      return true;
    }
  }

  /** A failed delivery: what was delivered before it is recorded, and the retry scheduled (or the cursor failing). */
  private async failed(lease: Lease, progress: Progress, error: DeliveryFailed): Promise<void> {
    if (lease.revision !== progress.saved || progress.deliveredSinceSave) await this.save(lease, progress);
    // A delivery in this lease restarted the count (advanceCursor): this is the first failure since.
    const attempts = (progress.deliveredInLease ? 0 : lease.attempts) + 1;
    const retryAtMs = this.ledger.clock.nowMs() + backoffOf(attempts, this.settings.backoffMs, this.settings.backoffMaxMs);
    await this.ledger.failCursor(lease, error.message, retryAtMs, attempts >= this.settings.attemptsMax);
  }

  /** Records the lease's progress and renews it; throws LeaseLost if it is no longer this process's. */
  private async save(lease: Lease, progress: Progress): Promise<void> {
    const kept = await this.ledger.advanceCursor(lease, this.leaseMs, progress.deliveredSinceSave);
    progress.saved = lease.revision;
    progress.renewedAtMs = this.ledger.clock.nowMs();
    progress.deliveredSinceSave = false;
    if (!kept) throw new LeaseLost();
  }

  /** Whether the lease has spent its budget (or the process is stopping): what is left waits for the next claim. */
  private spent(progress: Progress): boolean {
    return this.stopped || progress.sent >= leaseBudget.events || this.ledger.clock.nowMs() - progress.startedAtMs >= leaseBudget.ms;
  }

  /** The journal's events after the cursor, entry by entry, each entry's events all sent before it counts as done. */
  private async entries(lease: Lease, progress: Progress): Promise<void> {
    const { subscription } = lease;
    const subscribed: Subscribed = {
      id: subscription.id,
      journal: subscription.journal === null ? null : (JSON.parse(subscription.journal) as JournalFilter),
      thresholds: JSON.parse(subscription.thresholds) as ThresholdSpec[],
    };
    while (!this.spent(progress)) {
      const entries = await this.ledger.cursorEntries(lease.organization, lease.revision, entriesPerRead);
      if (entries.length === 0) return;
      const defaults = await this.ledger.kindDefaults();
      for (const entry of entries) {
        if (this.spent(progress)) return;
        const { events, state } = eventsOfEntry(subscribed, entry, lease.state, defaults);
        for (const event of events) await this.send(lease, progress, event);
        Object.assign(lease, { revision: entry.revision, state });
        if (events.length > 0) await this.save(lease, progress);
      }
      await this.save(lease, progress);
    }
  }

  /**
   * Denial digests, one per window of the subscription's interval that closed (with a grace
   * for counts still being added): a retry covers the same window, so it sends the same
   * content under the same id.
   */
  private async digests(lease: Lease, progress: Progress): Promise<void> {
    const intervalMs = lease.subscription.denials_interval_ms;
    if (intervalMs === null) return;
    while (!this.spent(progress) && lease.digestFrom + Number(intervalMs) <= this.ledger.clock.nowMs() - digestGraceMs) {
      const toMs = lease.digestFrom + Number(intervalMs);
      const denials = await this.ledger.readDenials(lease.organization, lease.digestFrom, toMs);
      if (denials.length > 0) await this.send(lease, progress, digestEvent(lease.subscription.id, lease.organization, lease.digestFrom, toMs, denials));
      lease.digestFrom = toMs;
      await this.save(lease, progress);
    }
  }

  /** One event, after renewing the lease if a second has passed (so a deleted subscription stops being sent to). */
  private async send(lease: Lease, progress: Progress, event: WebhookEvent): Promise<void> {
    if (this.stopped) throw new LeaseLost();
    if (this.ledger.clock.nowMs() - progress.renewedAtMs >= renewEveryMs) {
      if (!(await this.ledger.renewLease(lease, this.leaseMs))) throw new LeaseLost();
      progress.renewedAtMs = this.ledger.clock.nowMs();
    }
    try {
      await sendEvent(lease.subscription.url, lease.subscription.secret, event, this.settings);
      this.settings.onAttempt?.('delivered');
    } catch (error) {
      this.settings.onAttempt?.('failed');
      throw error instanceof DeliveryFailed ? error : new DeliveryFailed(String(error));
    }
    Object.assign(progress, { deliveredSinceSave: true, deliveredInLease: true, sent: progress.sent + 1 });
  }
}
