/**
 * The journal feed behind the watch streams: one follower per watched organization, however
 * many streams watch it. A follower learns of new entries from commits in this process at
 * once and from other processes by polling the organization's revision (one small read per
 * organization per interval, not one per stream), reads the new entries once, and keeps the
 * newest of them for streams that are caught up. An idle stream costs a timer and a socket.
 */
import { journalPageSizeMax, watchPollIntervalMs } from '../domain/constants.js';
import type { JournalEntry } from '../ledger/journal/journal.js';
import { freshReads, type Ledger } from '../ledger/ledger.js';

interface Follower {
  streams: number;
  /** The newest revision read, and the entries up to it (contiguous, at most a page). */
  head: number;
  recent: JournalEntry[];
  waiters: Set<() => void>;
  timer: NodeJS.Timeout | undefined;
  polling: Promise<void> | undefined;
  /** A commit was heard while a poll was reading: read once more after it. */
  again: boolean;
  /** When a poll last read the journal without failing (performance.now()). */
  polledAtMs: number;
}

/**
 * A follower whose polls have not succeeded for this many intervals (a read failing, or one
 * that hangs) is not trusted to say a stream is caught up: the stream reads for itself. A
 * stream once stalled for 30 s on a follower that never moved on (seen twice in CI, not
 * reproduced), while the entry it waited for was committed.
 */
const followerStaleIntervals = 8;

export class JournalFeed {
  private readonly followers = new Map<string, Follower>();
  private readonly stopListening: () => void;

  constructor(
    private readonly ledger: Ledger,
    private readonly pollIntervalMs = watchPollIntervalMs,
  ) {
    this.stopListening = ledger.onChange((organization) => {
      const follower = this.followers.get(organization);
      if (follower) void this.poll(organization, follower);
    });
  }

  /** Starts following an organization for one stream; call the returned function when it ends. */
  async follow(organization: string): Promise<() => void> {
    let follower = this.followers.get(organization);
    if (!follower) {
      const head = await this.ledger.readRevision(organization);
      follower = this.followers.get(organization);
      if (!follower) {
        follower = { streams: 0, head, recent: [], waiters: new Set(), timer: undefined, polling: undefined, again: false, polledAtMs: performance.now() };
        this.followers.set(organization, follower);
        this.schedule(organization, follower);
      }
    }
    follower.streams += 1;
    const followed = follower;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      followed.streams -= 1;
      if (followed.streams === 0) {
        clearTimeout(followed.timer);
        this.followers.delete(organization);
      }
    };
  }

  /**
   * Entries after `revision`, at most a page: from the shared recent entries when they reach
   * back that far (no read), else read for this stream alone (a stream catching up).
   */
  async read(organization: string, revision: number): Promise<JournalEntry[]> {
    const follower = this.followers.get(organization);
    const stale = follower !== undefined && this.stale(follower);
    if (follower && revision >= follower.head && !stale) return [];
    const first = follower?.recent[0];
    if (follower && !stale && first !== undefined && first.revision <= revision + 1) {
      const start = revision + 1 - first.revision;
      return follower.recent.slice(start, start + journalPageSizeMax);
    }
    return this.fresh(() => this.ledger.readJournal(organization, revision, journalPageSizeMax));
  }

  /** Resolves when the organization's journal passes `revision`, or after `timeoutMs`. */
  wait(organization: string, revision: number, timeoutMs: number, stop: AbortSignal): Promise<void> {
    const follower = this.followers.get(organization);
    if (!follower || follower.head > revision || stop.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        follower.waiters.delete(done);
        stop.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      follower.waiters.add(done);
      stop.addEventListener('abort', done);
    });
  }

  /**
   * The feed reads the primary, as its heads do: a lagging replica would answer nothing while
   * the head says there is more, and a catching-up stream would ask again at once, in a loop.
   */
  private fresh<T>(read: () => Promise<T>): Promise<T> {
    return freshReads.run(true, read);
  }

  close(): void {
    this.stopListening();
    for (const follower of this.followers.values()) clearTimeout(follower.timer);
    this.followers.clear();
  }

  private schedule(organization: string, follower: Follower): void {
    follower.timer = setTimeout(() => {
      void this.poll(organization, follower).finally(() => {
        if (this.followers.get(organization) === follower) this.schedule(organization, follower);
      });
    }, this.pollIntervalMs);
  }

  /** Its polls have not succeeded lately: it is not trusted to say a stream is caught up. */
  private stale(follower: Follower): boolean {
    return performance.now() - follower.polledAtMs > followerStaleIntervals * this.pollIntervalMs;
  }

  /** Reads what is new since the follower's head, once, however many asked at the same time. */
  private poll(organization: string, follower: Follower): Promise<void> {
    // A poll in flight past the stale bound is given up (a read that hangs): a new one starts.
    if (follower.polling && !this.stale(follower)) {
      follower.again = true;
      return follower.polling;
    }
    // eslint-disable-next-line prefer-const -- read in its own finally, after the first await
    let polling: Promise<void> | undefined;
    polling = (async () => {
      try {
        for (follower.again = true; follower.again; ) {
          follower.again = false;
          const entries = await this.fresh(() => this.ledger.readJournal(organization, follower.head, journalPageSizeMax));
          follower.polledAtMs = performance.now();
          // A poll given up on that answers late reads from an old head: what it found is known.
          if (entries.length === 0 || entries[0]!.revision !== follower.head + 1) continue;
          follower.recent = [...follower.recent, ...entries].slice(-journalPageSizeMax);
          follower.head = entries.at(-1)!.revision;
          if (entries.length === journalPageSizeMax) follower.again = true;
          for (const wake of [...follower.waiters]) wake();
        }
      } catch {
        // The next poll tries again; streams keep their place meanwhile.
      } finally {
        if (follower.polling === polling) follower.polling = undefined;
      }
    })();
    follower.polling = polling;
    return polling;
  }
}
