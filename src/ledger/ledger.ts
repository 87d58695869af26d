/**
 * The ledger: the one entry point for the API, the CLI, the controller and library users. It
 * is made of its concerns, each in its own folder with its operations, SQL and rules (catalog,
 * quotas, allocations, holds, limits, history, journal, recount, tokens, idempotency); they share a small
 * private core (core.ts: the store, the clock, read and write transactions, and the group
 * commit every decision goes through). Nothing outside src/ledger runs SQL on its tables.
 */
import { assert } from '../domain/assert.js';
import { systemClock, type Clock } from '../domain/clock.js';
import { migrate, pendingMigrations } from '../store/migrations.js';
import { openStore } from '../store/open.js';
import type { Engine as EngineName, Store, StoreStats } from '../store/store.js';
import { allocationsOf } from './allocations/index.js';
import { catalogOf } from './catalog/index.js';
import { Core, freshReads, systemPrincipal } from './core.js';
import {
  checkBatchSize,
  mergeOutcomes,
  operationsOf,
  prepareEntry,
  type BatchEntry,
  type BatchMode,
  type BatchResult,
} from './engine/batch.js';
import type { Decision, DecisionOutcome, Engine } from './engine/engine.js';
import { historyOf } from './history/index.js';
import { holdsOf } from './holds/index.js';
import { idempotencyOf } from './idempotency/index.js';
import { journalOf } from './journal/index.js';
import { limitsOf } from './limits/index.js';
import { quotasOf } from './quotas/index.js';
import { recountOf } from './recount/index.js';
import { requestsOf } from './requests/index.js';
import { subscriptionsOf } from './subscriptions/index.js';
import { tokensOf } from './tokens/index.js';
import type { WriteOptions } from './types.js';

export { systemPrincipal };
/** Run a request's work inside `freshReads.run(true, …)` to keep its reads off a replica. */
export { freshReads };

export interface LedgerOptions {
  /** `sqlite:PATH` or `postgres://…`; or an open store. */
  db: string | Store;
  clock?: Clock;
  /** Apply pending schema migrations on open (default true). */
  migrate?: boolean;
  /**
   * A replica for the reads that tolerate lag — listings, journal pages, history
   * (`allot serve --db-read`). Decisions and every other read stay on `db`.
   */
  dbRead?: string | Store;
}

export async function openLedger(options: LedgerOptions): Promise<Ledger> {
  const store = typeof options.db === 'string' ? openStore(options.db) : options.db;
  const clock = options.clock ?? systemClock;
  try {
    if (options.migrate ?? true) await migrate(store, clock.nowMs());
  } catch (error) {
    await store.close();
    throw error;
  }
  const replica = typeof options.dbRead === 'string' ? openStore(options.dbRead) : options.dbRead;
  return new Ledger(store, clock, replica);
}


/** The concerns' operations, all on the one ledger object (see each folder's index.ts). */
const concernsOf = (core: Core) => ({
  ...catalogOf(core),
  ...quotasOf(core),
  ...allocationsOf(core),
  ...holdsOf(core),
  ...limitsOf(core),
  ...historyOf(core),
  ...journalOf(core),
  ...recountOf(core),
  ...tokensOf(core),
  ...idempotencyOf(core),
  ...subscriptionsOf(core),
  ...requestsOf(core),
});
type Concerns = ReturnType<typeof concernsOf>;

/** Each ledger's concerns, bound to its core. */
const concernsOfLedger = new WeakMap<Ledger, Concerns>();

// A class and an interface of one name merge: the class has the concerns' methods (forwarded
// from its prototype, below) without listing them again.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Ledger extends Concerns {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Ledger {
  readonly #core: Core;
  /** The ledger's time; the API's deadlines and a test's clock use it too. */
  readonly clock: Clock;
  /** The group commit, for its statistics (metrics, benchmarks). */
  readonly engine: Engine;

  constructor(store: Store, clock: Clock, replica?: Store) {
    const core = new Core(store, clock, replica);
    this.#core = core;
    this.clock = clock;
    this.engine = core.engine;
    concernsOfLedger.set(this, concernsOf(core));
  }

  /**
   * The store underneath, for tests and tools that inspect or damage the books on purpose.
   * Code outside src/ledger never uses it (the shape test holds that).
   */
  get store(): Store {
    return this.#core.store;
  }

  /** Which engine the books are on (sqlite or postgres), for messages. */
  get engineName(): EngineName {
    return this.#core.store.engine;
  }

  /** The store's connections and retried transactions so far (a metrics scrape); a store may keep none. */
  /** With a read replica: the reads that tolerate lag, by where they were answered; else undefined. */
  replicaReads(): Readonly<{ replica: number; primary: number; fallback: number }> | undefined {
    return this.#core.replica === undefined ? undefined : { ...this.#core.laggingReads };
  }

  storeStats(): StoreStats | undefined {
    return this.#core.store.stats?.();
  }

  /**
   * Whether this ledger can serve: the database answers and its schema has every migration
   * this code knows (`/readyz`). Never throws.
   */
  async readiness(): Promise<{ ready: boolean; detail: string }> {
    try {
      await this.ping();
    } catch {
      return { ready: false, detail: 'the database does not answer' };
    }
    const pending = await pendingMigrations(this.#core.store);
    if (pending.length > 0) return { ready: false, detail: `migrations not applied: ${pending.join(', ')} (run allot migrate)` };
    return { ready: true, detail: 'ready' };
  }

  /**
   * Decides one request or batch through the group commit (the API's path: it brings its
   * idempotency key and reads the outcome of each operation itself).
   */
  decide(decision: Decision): Promise<DecisionOutcome> {
    return this.#core.engine.decide(decision);
  }

  /**
   * Decides many operations of one organization at once: each on its own (`independent`), or
   * all or none (`atomic`). Each entry's outcome comes back in order: applied with its value,
   * refused with its error, or not applied (atomic). At most 1,000 entries.
   */
  async batch(
    organization: string,
    entries: readonly BatchEntry[],
    options: WriteOptions & { mode?: BatchMode } = {},
  ): Promise<BatchResult> {
    const mode = options.mode ?? 'independent';
    checkBatchSize(entries.length);
    const prepared = entries.map((entry) => prepareEntry(organization, entry));
    const operations = operationsOf(prepared, mode);
    if (operations.length === 0) return { mode, results: mergeOutcomes(prepared, mode, []) };
    const outcome = await this.#core.engine.decide({
      operations,
      mode,
      principal: options.principal ?? systemPrincipal,
      dryRun: options.dryRun ?? false,
    });
    assert(outcome.kind === 'decided', 'a decision without a key is decided');
    return { mode, results: mergeOutcomes(prepared, mode, outcome.outcomes) };
  }

  /** Answers every decision already queued, then closes the store; new ones are refused (503). */
  async close(): Promise<void> {
    await this.#core.engine.close();
    await this.#core.store.close();
    await this.#core.replica?.close();
  }
}

// Every concern's method on the prototype, forwarding to this ledger's own: so a subclass may
// override one and call `super`, and a method calling `this.x` reaches the override. (The
// factories only close over the core; building them with none, once, just lists the names.)
for (const name of Object.keys(concernsOf(undefined as unknown as Core))) {
  Object.defineProperty(Ledger.prototype, name, {
    value: function forward(this: Ledger, ...args: unknown[]) {
      const method = concernsOfLedger.get(this)![name as keyof Concerns] as (...args: unknown[]) => unknown;
      return method.apply(this, args);
    },
    writable: true,
    configurable: true,
  });
}
