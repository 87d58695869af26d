/**
 * The ledger's transaction core, private to src/ledger: the store, the clock, the group-commit
 * engine, and the three ways every concern touches the books — a read transaction, a write
 * transaction that journals its changes, and one decision through the group commit. Listeners
 * hear of commits here, whichever way they came.
 */
import { assert } from '../domain/assert.js';
import type { Clock } from '../domain/clock.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { groupPipelinesPostgres, replicaFreshMs, replicaFreshOrganizationsMax } from '../domain/constants.js';
import type { Executor, Store } from '../store/store.js';
import type { WriteContext } from './context.js';
import { Engine } from './engine/engine.js';
import type { Operation, ResultOf } from './engine/operations.js';
import { writeJournal } from './journal/journal.js';
import type { WriteOptions } from './types.js';

/** The principal of writes whose caller names none (library use, the CLI). */
export const systemPrincipal = 'system';

export type Listener = (organization: string) => void;

/** Set for the work of a request that asked for fresh data: its reads skip the replica. */
export const freshReads = new AsyncLocalStorage<boolean>();

export class Core {
  readonly listeners = new Set<Listener>();
  readonly credentialListeners = new Set<() => void>();
  /** The write path of decisions: group commit (see engine/engine.ts). */
  readonly engine: Engine;

  /** Reads that tolerate lag, by where they were answered (`allot_replica_reads_total`). */
  readonly laggingReads = { replica: 0, primary: 0, fallback: 0 };
  /** When this process last changed each organization, and any (for reads that may go to a replica). */
  private readonly changedAtMs = new Map<string, number>();
  private lastChangeMs = -Infinity;

  constructor(
    readonly store: Store,
    readonly clock: Clock,
    /** A replica for reads that tolerate lag (`--db-read`), if any. */
    readonly replica?: Store,
  ) {
    this.engine = new Engine(store, clock, {
      // SQLite has one writer: more pipelines would only wait on each other.
      pipelines: store.dialect.concurrentWrites ? groupPipelinesPostgres : 1,
      onCommit: (organizations: ReadonlySet<string>, projectsDeleted: boolean) => {
        for (const organization of organizations) for (const listener of this.listeners) listener(organization);
        if (projectsDeleted) this.credentialsChanged();
      },
    });
    // Every commit heard by the listeners, whichever way it came, marks its organization fresh.
    if (replica !== undefined) this.listeners.add((organization) => this.changed(organization));
  }

  read<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    return this.store.transaction(work, { readOnly: true });
  }

  /**
   * A read that tolerates lag (a listing, a journal page, history): on the replica if there is
   * one — unless this process changed the organization within `replicaFreshMs`, or the
   * request asked for fresh data (`Cache-Control: no-cache`, see api/app.ts): a client reads
   * its own writes. A replica that fails is skipped for the primary.
   */
  async lagging<T>(organization: string | undefined, work: (tx: Executor) => Promise<T>): Promise<T> {
    const { replica } = this;
    if (replica === undefined) return this.read(work);
    // A listing across organizations is fresh after any change here (a new organization in it).
    const changedAtMs = organization === undefined ? this.lastChangeMs : (this.changedAtMs.get(organization) ?? -Infinity);
    if (freshReads.getStore() === true || changedAtMs > this.clock.nowMs() - replicaFreshMs) {
      this.laggingReads.primary += 1;
      return this.read(work);
    }
    try {
      const result = await replica.transaction(work, { readOnly: true });
      this.laggingReads.replica += 1;
      return result;
    } catch {
      // Unavailable, or behind in a way that shows as an error (an organization it has not
      // seen yet: 404; a migration not yet replayed): the primary answers.
      this.laggingReads.fallback += 1;
      return this.read(work);
    }
  }

  /** Remembers a change of `organization` by this process (bounded: old entries go first). */
  private changed(organization: string): void {
    const nowMs = this.clock.nowMs();
    this.lastChangeMs = nowMs;
    this.changedAtMs.delete(organization);
    this.changedAtMs.set(organization, nowMs);
    for (const [name, atMs] of this.changedAtMs) {
      if (atMs > nowMs - replicaFreshMs && this.changedAtMs.size <= replicaFreshOrganizationsMax) break;
      this.changedAtMs.delete(name);
    }
  }

  /** A read whose statements all see one moment (several counters and records at once). */
  snapshot<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    return this.store.transaction(work, { readOnly: true, snapshot: true });
  }

  /**
   * One write transaction: the work, then the caller's `record` hook in the same transaction.
   * After commit, listeners hear that the organization changed.
   */
  async write<T>(options: WriteOptions<T>, work: (context: WriteContext) => Promise<T>, organization?: string): Promise<T> {
    const result = await this.store.transaction(async (tx) => {
      const context: WriteContext = {
        tx,
        dialect: this.store.dialect,
        nowMs: this.clock.nowMs(),
        principal: options.principal ?? systemPrincipal,
        journal: [],
      };
      const value = await work(context);
      await writeJournal(context);
      if (options.record) await options.record(tx, value);
      return value;
    });
    if (organization !== undefined) for (const listener of this.listeners) listener(organization);
    return result;
  }

  /** One operation through the group commit, answered as a library call: its result, or its refusal thrown. */
  async one<O extends Operation>(operation: O, options: WriteOptions = {}): Promise<ResultOf<O>> {
    const outcome = await this.engine.decide({
      operations: [operation],
      mode: 'independent',
      principal: options.principal ?? systemPrincipal,
      dryRun: options.dryRun ?? false,
    });
    assert(outcome.kind === 'decided', 'a decision without a key is decided');
    const [result] = outcome.outcomes;
    if (result!.status === 'refused') throw result!.error;
    assert(result!.status === 'applied', 'a lone operation is applied or refused');
    return result!.value as ResultOf<O>;
  }

  /** Credentials may have ended (a token revoked, a project deleted): caches drop them. */
  credentialsChanged(): void {
    for (const listener of this.credentialListeners) listener();
  }
}
