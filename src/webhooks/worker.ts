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
const minuteMs = 60_000;
const denialsForgetEveryMs = 3_600_000;

/** The delay before retry `attempt` (1-based): exponential, capped, with jitter over its upper half. */
export function backoffOf(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function startDeliveries(ledger: Ledger, options: DeliveryOptions): { stop(): Promise<void> } {
  const worker = new Worker(ledger, { timeoutMs: 10_000, attemptsMax: 10, backoffMs: 1000, backoffMaxMs: 300_000, pollMs: 1000, ...options });
  const running = worker.run();
  return {
    async stop() {
      worker.stop();
      await running;
    },
  };
}

interface Progress {
  /** The revision last recorded, and when. */
  saved: number;
  savedAtMs: number;
}

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
      let leases: Lease[] = [];
      try {
        leases = await this.ledger.claimCursors(this.holder, this.leaseMs, cursorsPerClaim);
        if (this.ledger.clock.nowMs() - forgotAtMs > denialsForgetEveryMs) {
          forgotAtMs = this.ledger.clock.nowMs();
          await this.ledger.forgetDenials();
        }
      } catch (error) {
        this.settings.onError?.(error);
      }
      await Promise.all(leases.map((lease) => this.deliver(lease)));
      if (leases.length === 0 && !this.stopped) await this.idle();
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

  /** Sends a cursor's events until it is caught up, recording its progress; a failure schedules the retry. */
  private async deliver(lease: Lease): Promise<void> {
    const { revision: first, digestFrom: digestFirst } = lease;
    const progress = { saved: lease.revision, savedAtMs: this.ledger.clock.nowMs() };
    try {
      if (!(await this.entries(lease, progress))) return; // The lease is someone else's now.
      await this.digest(lease);
      if (lease.revision !== progress.saved) await this.save(lease, progress);
      await this.ledger.releaseCursor(lease);
    } catch (error) {
      if (!(error instanceof DeliveryFailed)) {
        this.settings.onError?.(error);
        await this.ledger.releaseCursor(lease).catch(() => {});
        return;
      }
      if (lease.revision !== progress.saved) await this.save(lease, progress);
      // Progress in this lease restarted the count (advanceCursor): this is the first failure since.
      const progressed = lease.revision !== first || lease.digestFrom !== digestFirst;
      const attempts = (progressed ? 0 : lease.attempts) + 1;
      const retryAtMs = this.ledger.clock.nowMs() + backoffOf(attempts, this.settings.backoffMs, this.settings.backoffMaxMs);
      await this.ledger.failCursor(lease, error.message, retryAtMs, attempts >= this.settings.attemptsMax).catch(this.settings.onError);
    }
  }

  /** Records the lease's progress and renews it; false if it is no longer this process's. */
  private save(lease: Lease, progress: Progress): Promise<boolean> {
    progress.saved = lease.revision;
    progress.savedAtMs = this.ledger.clock.nowMs();
    return this.ledger.advanceCursor(lease, this.leaseMs);
  }

  /** The journal's events after the cursor, page by page; false if the lease was lost. */
  private async entries(lease: Lease, progress: Progress): Promise<boolean> {
    const { subscription } = lease;
    const subscribed: Subscribed = {
      id: subscription.id,
      journal: subscription.journal === null ? null : (JSON.parse(subscription.journal) as JournalFilter),
      thresholds: JSON.parse(subscription.thresholds) as ThresholdSpec[],
    };
    for (;;) {
      const entries = await this.ledger.cursorEntries(lease.organization, lease.revision, entriesPerRead);
      if (entries.length === 0 || this.stopped) return true;
      const defaults = await this.ledger.kindDefaults();
      for (const entry of entries) {
        const { events, state } = eventsOfEntry(subscribed, entry, lease.state, defaults);
        for (const event of events) {
          if (this.ledger.clock.nowMs() - progress.savedAtMs > this.leaseMs / 3 && !(await this.save(lease, progress))) return false;
          await this.send(lease, event);
        }
        Object.assign(lease, { revision: entry.revision, state });
        if (events.length > 0 && !(await this.save(lease, progress))) return false;
      }
      if (!(await this.save(lease, progress))) return false;
    }
  }

  /** The denial digest, once its interval has passed: refusals of the whole minutes since the last. */
  private async digest(lease: Lease): Promise<void> {
    const intervalMs = lease.subscription.denials_interval_ms;
    if (intervalMs === null) return;
    const toMs = Math.floor(this.ledger.clock.nowMs() / minuteMs) * minuteMs;
    if (toMs - lease.digestFrom < Number(intervalMs)) return;
    const denials = await this.ledger.readDenials(lease.organization, lease.digestFrom, toMs);
    if (denials.length > 0) await this.send(lease, digestEvent(lease.subscription.id, lease.organization, lease.digestFrom, toMs, denials));
    lease.digestFrom = toMs;
    await this.ledger.advanceCursor(lease, this.leaseMs);
  }

  private async send(lease: Lease, event: WebhookEvent): Promise<void> {
    try {
      await sendEvent(lease.subscription.url, lease.subscription.secret, event, this.settings);
      this.settings.onAttempt?.('delivered');
    } catch (error) {
      this.settings.onAttempt?.('failed');
      throw error instanceof DeliveryFailed ? error : new DeliveryFailed(String(error));
    }
  }
}
