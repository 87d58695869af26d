/**
 * The write path, as one pipeline: request → checked operation → queue → group transaction →
 * answers. Decisions that arrive while a group is being committed wait for the next group; a
 * group loads what all its decisions need under lock (load.ts), decides them one after another
 * on the rows in memory, each isolated by a savepoint of the working set (a refusal undoes only
 * itself), writes what changed in a constant number of statements (flush.ts), and commits once:
 * one fsync on SQLite, one commit and a handful of round trips on PostgreSQL, for the whole
 * group. No answer leaves before the commit that holds it; a failed commit answers every
 * decision in it with the failure, and none is half-applied; a group that fails before its
 * commit runs again one decision at a time, so one bad decision never fails its neighbours.
 *
 * A lone decision does not wait for company: its group starts at the end of the event loop's
 * turn, as soon as nothing else runs.
 */
import { assert } from '../../domain/assert.js';
import type { Clock } from '../../domain/clock.js';
import { groupOperationsMax, groupQueueMax, groupRetriesMax, idempotencyRetentionMs } from '../../domain/constants.js';
import { AllotError } from '../../domain/errors.js';
import type { Store } from '../../store/store.js';
import type { StoredResponse } from '../idempotency/keys.js';
import type { Actor } from '../allocations/decide.js';
import { expireDueHolds } from '../holds/decide.js';
import { decideOperation, planOf } from './decisions.js';
import { flush, KeyRaced } from './flush.js';
import { CountersMissing, createCounters, DueHoldsFound, load } from './load.js';
import { Plan, type Operation } from './operations.js';
import { traced, traceGroup } from './tracing.js';
import { idempotencyKey, type WorkingSet } from './working-set.js';

/** How one operation of a decision ended. */
export type OperationOutcome =
  | { status: 'applied'; value: unknown }
  | { status: 'refused'; error: AllotError }
  /** In an atomic batch: not applied because another operation was refused. */
  | { status: 'not-applied' };

export interface Idempotency {
  key: string;
  /** What makes two requests "the same" (the API hashes method, path, If-Match and body). */
  requestHash: string;
  /** The response stored for the key (and replayed to its retries), from the outcomes. */
  respond(outcomes: readonly OperationOutcome[]): StoredResponse;
}

export interface Decision {
  operations: readonly Operation[];
  /** `independent`: each operation on its own; `atomic`: all or none (a batch). */
  mode: 'independent' | 'atomic';
  principal: string;
  /** Decide and answer, then undo: nothing is written, no key is consumed. */
  dryRun?: boolean;
  idempotency?: Idempotency;
}

export type DecisionOutcome =
  | { kind: 'decided'; outcomes: OperationOutcome[] }
  /** The key's first request is answered: its response, again. */
  | { kind: 'replayed'; response: StoredResponse }
  /** The key was first used for another request. */
  | { kind: 'reused' }
  /** The key's first request is still running in another process (it holds the claim). */
  | { kind: 'pending' };

interface Queued {
  decision: Decision;
  resolve(outcome: DecisionOutcome): void;
  reject(error: unknown): void;
}

/** Groups of one pipeline, one after another. */
class Pipeline {
  private readonly queue: Queued[] = [];
  private running = false;
  private idle: (() => void)[] = [];

  constructor(private readonly run: (group: Queued[]) => Promise<void>) {}

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves once every decision queued so far is answered. */
  drained(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  submit(queued: Queued): void {
    this.queue.push(queued);
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.drain());
    }
  }

  /**
   * One group, then the next after the event loop has read what arrived meanwhile: a group
   * starts in the loop's check phase, after every request that was readable in this turn
   * has been parsed and queued (on SQLite a commit blocks the loop, so requests wait in the
   * sockets and land together). A lone request waits for nothing but that turn's end.
   */
  private async drain(): Promise<void> {
    const group: Queued[] = [];
    let operations = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!.decision.operations.length;
      if (group.length > 0 && operations + next > groupOperationsMax) break;
      group.push(this.queue.shift()!);
      operations += next;
    }
    try {
      await this.run(group);
    } finally {
      if (this.queue.length > 0) setImmediate(() => void this.drain());
      else {
        this.running = false;
        for (const resolve of this.idle.splice(0)) resolve();
      }
    }
  }
}

export interface EngineOptions {
  /**
   * Groups in flight at once, each for its own organizations (a decision's organization picks
   * its pipeline). SQLite has one writer: 1.
   */
  pipelines: number;
  /**
   * Heard after each commit, with the organizations it changed, and whether it deleted a
   * project (which revokes the project's tokens).
   */
  onCommit(organizations: ReadonlySet<string>, projectsDeleted: boolean): void;
}

/** One committed group, as the metrics see it. */
export interface GroupCommitted {
  decisions: number;
  operations: number;
  /** From the group's start to its commit, retries included. */
  seconds: number;
}

/** One decision answered, as the metrics see it. */
export interface DecisionSettled {
  decision: Decision;
  /** Its outcome, or the failure it was answered with (no room in the queue, a failed commit). */
  outcome: DecisionOutcome | Error;
  /** From its arrival to its answer. */
  seconds: number;
}

export class Engine {
  private readonly pipelines: Pipeline[];
  private readonly groupListeners = new Set<(group: GroupCommitted) => void>();
  private readonly decisionListeners = new Set<(settled: DecisionSettled) => void>();
  /** Totals since the start, for the metrics and the benchmark. */
  readonly stats = { groups: 0, decisions: 0, operations: 0, retries: 0, splits: 0 };
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly options: EngineOptions,
  ) {
    assert(options.pipelines >= 1, 'at least one pipeline');
    this.pipelines = Array.from({ length: options.pipelines }, () => new Pipeline((group) => traceGroup(group, () => this.runGroup(group))));
  }

  /** Decisions queued and not yet in a group (beyond `groupQueueMax` a decision is refused). */
  get waiting(): number {
    return this.pipelines.reduce((sum, pipeline) => sum + pipeline.waiting, 0);
  }

  /** Heard after each group's commit. */
  onGroup(listener: (group: GroupCommitted) => void): () => void {
    this.groupListeners.add(listener);
    return () => this.groupListeners.delete(listener);
  }

  /** Heard as each decision is answered, refusals and failures included. */
  onDecision(listener: (settled: DecisionSettled) => void): () => void {
    this.decisionListeners.add(listener);
    return () => this.decisionListeners.delete(listener);
  }

  /**
   * Refuses new decisions (503) and resolves once every queued one is answered: what was
   * accepted is committed or failed before the store closes under it.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.pipelines.map((pipeline) => pipeline.drained()));
  }

  /** Queues a decision; resolves after the commit of the group that decided it. */
  decide(decision: Decision): Promise<DecisionOutcome> {
    const started = performance.now();
    const answered = this.enqueue(decision);
    if (this.decisionListeners.size === 0) return answered;
    const settle = (outcome: DecisionOutcome | Error) =>
      observe(() => {
        for (const listener of this.decisionListeners) listener({ decision, outcome, seconds: (performance.now() - started) / 1000 });
      });
    answered.then(settle, (error: unknown) => settle(error instanceof Error ? error : new Error(String(error))));
    return answered;
  }

  private enqueue(decision: Decision): Promise<DecisionOutcome> {
    assert(decision.operations.length > 0, 'a decision has operations');
    if (this.closed) return Promise.reject(new AllotError('service-unavailable', 'the ledger is closing; retry on another server'));
    const organization = decision.operations[0]!.organization;
    const pipeline = this.pipelines[hashOf(organization) % this.pipelines.length]!;
    if (pipeline.waiting >= groupQueueMax) {
      return Promise.reject(new AllotError('service-unavailable', 'too many decisions are waiting; retry shortly'));
    }
    return new Promise((resolve, reject) => pipeline.submit(traced({ decision, resolve, reject })));
  }

  /**
   * Runs a group, and whatever fails on the way (even the recovery from a failure: making
   * counter rows, a split) answers every decision of it not yet answered: no decision is ever
   * left waiting, and the pipeline goes on.
   */
  private async runGroup(group: Queued[]): Promise<void> {
    try {
      await this.attemptGroup(group);
    } catch (error) {
      for (const queued of group) queued.reject(error);
    }
  }

  /** Runs a group in one transaction, again when it lost a race it can only learn of at flush. */
  private async attemptGroup(group: Queued[]): Promise<void> {
    const started = performance.now();
    // The sweeper's groups come for due holds; the others only probe for them at first.
    let withDue = group.some(({ decision }) => decision.operations.some((operation) => operation.op === 'holds.expire'));
    for (let attempt = 0; ; attempt += 1) {
      let decided = false;
      try {
        const { outcomes, changed, projectsDeleted } = await this.store.transaction(async (tx) => {
          const result = await this.decideGroup(tx, group, withDue);
          decided = true;
          return result;
        }, { byIndex: true });
        const operations = group.reduce((sum, { decision }) => sum + decision.operations.length, 0);
        this.stats.groups += 1;
        this.stats.decisions += group.length;
        this.stats.operations += operations;
        const committed = { decisions: group.length, operations, seconds: (performance.now() - started) / 1000 };
        group.forEach((queued, i) => {
          const outcome = outcomes[i]!;
          if (outcome instanceof Error) queued.reject(outcome);
          else queued.resolve(outcome);
        });
        // Observers of a commit that happened: their failure must not fail what committed.
        observe(() => {
          for (const listener of this.groupListeners) listener(committed);
        });
        if (changed.size > 0) observe(() => this.options.onCommit(changed, projectsDeleted));
        return;
      } catch (error) {
        if (error instanceof DueHoldsFound && !withDue) {
          withDue = true;
          continue;
        }
        // First uses of kinds: their counter rows are made apart, then the group runs again.
        if (error instanceof CountersMissing && attempt < groupRetriesMax) {
          const { keys } = error;
          try {
            await this.store.transaction((tx) => createCounters(tx, this.store.dialect, keys, this.clock.nowMs()));
            continue;
          } catch (failure) {
            // Nothing of the group was written: alone, only the decisions that need the rows fail.
            if (group.length === 1) throw failure;
            await this.split(group);
            return;
          }
        }
        // A referenced resource or an idempotency key taken by another process between this
        // group's reads and its writes: the next attempt reads it and answers accordingly.
        const raced = error instanceof KeyRaced || this.store.isUniqueViolation(error);
        if (raced && attempt < groupRetriesMax) {
          this.stats.retries += 1;
          continue;
        }
        // Anything else failed before the commit (a row the database refused, say): nothing
        // was written, and each decision runs again alone, so only the one at fault fails.
        // A failed commit may have landed or not: its decisions all answer with the failure.
        if (!decided && group.length > 1) {
          await this.split(group);
          return;
        }
        for (const queued of group) queued.reject(error);
        return;
      }
    }
  }

  /** Runs each decision of a group that failed before its commit again, alone. */
  private async split(group: readonly Queued[]): Promise<void> {
    this.stats.splits += 1;
    for (const queued of group) await this.runGroup([queued]);
  }

  private async decideGroup(
    tx: Parameters<Parameters<Store['transaction']>[0]>[0],
    group: readonly Queued[],
    withDue: boolean,
  ): Promise<{ outcomes: (DecisionOutcome | Error)[]; changed: Set<string>; projectsDeleted: boolean }> {
    const nowMs = this.clock.nowMs();
    const plan = new Plan();
    for (const { decision } of group) {
      for (const operation of decision.operations) planOf(operation, plan);
      if (decision.idempotency) {
        const { key } = decision.idempotency;
        plan.keys.set(idempotencyKey(decision.principal, key), { principal: decision.principal, key });
      }
    }
    const { ws, due } = await load(tx, this.store.dialect, plan, nowMs, withDue);
    const changed = new Set<string>();
    const expired = new Map<string, number>();
    for (const [organization, records] of due) {
      // Journaled as the first decision on the organization that saw them expire (the sweeper's
      // own decisions are the system's), as if it had resolved them itself.
      const first = group.find(({ decision }) => !decision.dryRun && decision.operations.some((o) => o.organization === organization));
      const count = expireDueHolds(ws, organization, records, first?.decision.principal ?? 'system');
      expired.set(organization, count);
      if (count > 0) changed.add(organization);
    }
    const outcomes = group.map(({ decision }) => {
      try {
        const outcome = this.decideOne(ws, decision, expired);
        if (!decision.dryRun && outcome.kind === 'decided' && outcome.outcomes.some((o) => o.status === 'applied')) {
          for (const operation of decision.operations) changed.add(operation.organization);
        }
        return outcome;
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    });
    // Expiries are kept where a decision of the group on the organization was (or where the
    // sweeper asked, or a confirm or release found its hold resolved): a refused request or a
    // dry run writes nothing, not even the expiries it saw; the next decision resolves them.
    for (const organization of expired.keys()) {
      const kept = group.some(({ decision }, i) => keepsExpiries(decision, outcomes[i]!, organization));
      if (!kept) {
        ws.revertOrganization(organization);
        changed.delete(organization);
      }
    }
    await flush(tx, ws);
    return { outcomes, changed, projectsDeleted: ws.deletedProjects.length > 0 };
  }

  /** One decision: its operations in order, each under a savepoint, then its idempotent answer. */
  private decideOne(ws: WorkingSet, decision: Decision, expired: ReadonlyMap<string, number>): DecisionOutcome {
    // A dry run looks its key up as the real request would (a replay, or a refusal of another
    // request under it), and stores nothing under it.
    const keyed = decision.idempotency;
    const keyName = keyed ? idempotencyKey(decision.principal, keyed.key) : '';
    if (keyed) {
      const stored = ws.keys.get(keyName);
      if (stored && stored.createdAt > ws.nowMs - idempotencyRetentionMs) {
        if (stored.requestHash !== keyed.requestHash) return { kind: 'reused' };
        if (stored.state === 'pending' || stored.response === null) return { kind: 'pending' };
        return { kind: 'replayed', response: stored.response };
      }
    }
    const actor: Actor = { principal: decision.principal };
    const start = ws.savepoint();
    const outcomes: OperationOutcome[] = [];
    let response: StoredResponse | undefined;
    try {
      for (const [index, operation] of decision.operations.entries()) {
        const before = ws.savepoint();
        try {
          outcomes.push({ status: 'applied', value: decideOperation(ws, actor, operation, expired) });
        } catch (error) {
          if (!(error instanceof AllotError)) throw error;
          ws.rollbackTo(before);
          outcomes.push({ status: 'refused', error });
          if (decision.mode === 'atomic') {
            ws.rollbackTo(start);
            for (let rest = 0; rest < decision.operations.length; rest += 1) {
              if (rest < index) outcomes[rest] = { status: 'not-applied' };
              if (rest > index) outcomes.push({ status: 'not-applied' });
            }
            break;
          }
        }
      }
      if (keyed) response = keyed.respond(outcomes);
    } catch (error) {
      // A bug, not a refusal: this decision answers with it and leaves nothing behind.
      ws.rollbackTo(start);
      throw error;
    }
    if (decision.dryRun) ws.rollbackTo(start);
    if (keyed && !decision.dryRun) {
      ws.put(ws.keys, keyName, {
        principal: decision.principal,
        key: keyed.key,
        requestHash: keyed.requestHash,
        state: 'done',
        response: response!,
        createdAt: ws.nowMs,
      });
    }
    return { kind: 'decided', outcomes };
  }
}

/** Whether a decision keeps its organization's expiries of the group (see decideGroup). */
function keepsExpiries(decision: Decision, outcome: DecisionOutcome | Error, organization: string): boolean {
  if (decision.dryRun || outcome instanceof Error || outcome.kind !== 'decided') return false;
  // A refused atomic batch writes nothing at all.
  if (decision.mode === 'atomic' && outcome.outcomes.some((o) => o.status === 'refused')) return false;
  return decision.operations.some((operation, i) => {
    if (operation.organization !== organization) return false;
    const result = outcome.outcomes[i]!;
    if (result.status === 'applied') return true;
    // A confirm or release of a hold already resolved commits what it found, as it always has.
    return result.status === 'refused' && result.error.code === 'hold-already-resolved';
  });
}

/** Runs an observer of a commit; its failure is reported as a warning, never thrown. */
function observe(notify: () => void): void {
  try {
    notify();
  } catch (error) {
    process.emitWarning(error instanceof Error ? error : new Error(String(error)), 'AllotCommitObserver');
  }
}

/** A small stable hash of an organization's id, to pick its pipeline. */
function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i += 1) hash = (hash * 31 + text.charCodeAt(i)) >>> 0;
  return hash;
}
