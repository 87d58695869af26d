/**
 * The ledger's transaction core, private to src/ledger: the store, the clock, the group-commit
 * engine, and the three ways every concern touches the books — a read transaction, a write
 * transaction that journals its changes, and one decision through the group commit. Listeners
 * hear of commits here, whichever way they came.
 */
import { assert } from '../domain/assert.js';
import type { Clock } from '../domain/clock.js';
import { groupPipelinesPostgres } from '../domain/constants.js';
import type { Executor, Store } from '../store/store.js';
import type { WriteContext } from './context.js';
import { Engine } from './engine/engine.js';
import type { Operation, ResultOf } from './engine/operations.js';
import { writeJournal } from './journal/journal.js';
import type { WriteOptions } from './types.js';

/** The principal of writes whose caller names none (library use, the CLI). */
export const systemPrincipal = 'system';

export type Listener = (organization: string) => void;

export class Core {
  readonly listeners = new Set<Listener>();
  readonly credentialListeners = new Set<() => void>();
  /** The write path of decisions: group commit (see engine/engine.ts). */
  readonly engine: Engine;

  constructor(
    readonly store: Store,
    readonly clock: Clock,
  ) {
    this.engine = new Engine(store, clock, {
      // SQLite has one writer: more pipelines would only wait on each other.
      pipelines: store.dialect.concurrentWrites ? groupPipelinesPostgres : 1,
      onCommit: (organizations: ReadonlySet<string>, projectsDeleted: boolean) => {
        for (const organization of organizations) for (const listener of this.listeners) listener(organization);
        if (projectsDeleted) this.credentialsChanged();
      },
    });
  }

  read<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    return this.store.transaction(work, { readOnly: true });
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
