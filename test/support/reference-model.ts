/**
 * A reference model of the ledger's quota rules, in memory and with no I/O, for model-based
 * tests: it decides every operation from the rules in DESIGN.md (and the holds spec) on its own,
 * and the test checks that the real ledger answers the same. It deliberately imports nothing
 * from src/ (not even the decision rules), so a mistake there cannot be copied into the oracle.
 *
 * Rules it encodes:
 * - limit = organization quota ?? kind default ?? unlimited (reported as 2^53-1).
 * - A change is allowed per kind if its usage delta (committed + reserved) is <= 0 or
 *   used + delta <= limit; a refused change names every refused kind, in kind order.
 * - At most one live allocation or pending hold per (organization, resource kind, resource id).
 * - A quota below usage is refused (the whole request) unless forced.
 * - Holds: a hold counts as `held` (its committed + reserved) from its creation until exactly
 *   one of confirm (into a live allocation with the same id, generation + 1, of at most what it
 *   holds per kind and only of kinds it holds), release, or expiry (the clock reaches
 *   expiresAt = created + ttl). A second confirm/release, or one after expiry, is refused
 *   with hold-already-resolved naming how it was resolved.
 * - Expiry, two views. No decision and no getQuotas counts a hold whose time has passed
 *   (`usageOf`, `usedOf`, `quotasOf`, the duplicate rule): a decision resolves its
 *   organization's expired holds first, in its own transaction, so that resolution
 *   (generation + 1, resolvedAt, one hold.expired journal entry each, in id order, before the
 *   decision's own entry) commits only with the decision — or with a hold-already-resolved
 *   answer, which commits too — and is undone by a refusal. The *books* (the stored counters,
 *   which the journal's deltas replay to and verifyCounters recounts) keep an expired hold as
 *   held until a committed decision on its organization or sweepExpiredHolds resolves it
 *   (`booksOf`).
 * - Generations: an allocation or hold starts at 1; every change (replace, delete, confirm,
 *   release, expiry) adds 1. ifGeneration that differs refuses with precondition-failed
 *   (currentGeneration), except a delete of an already-deleted allocation ({deleted: false}).
 * - Journal: every committed change appends one entry (quota.set, allocation.created/updated/
 *   deleted, hold.created/confirmed/released/expired) to its organization's journal.
 * - Project quotas: per project and kind a cap (null: none) and a guarantee (0: none). A
 *   change raising project P's usage of a kind by delta > 0 must keep P within its cap
 *   (scope "project"), the organization within its limit (scope "organization"), and the
 *   organization's usage plus what the other projects' guarantees keep back unused
 *   (sum over Q != P of max(0, guaranteed_Q - used_Q)) within the limit (scope "guarantees",
 *   reported with limit = limit - keptBack, only when the organization level passes). Each
 *   refusing level is a violation, in kind order, project first.
 * - setProjectQuotas: per listed kind (cap, guaranteed; absent = none). A guarantee above the
 *   cap is invalid-request. Refusals, collected over the kinds, thrown most severe first:
 *   guarantees-exceed-quota (a raised guarantee makes the sum exceed the limit; even forced),
 *   quota-below-usage (a cap below the project's usage, unless forced), guarantee-unavailable
 *   (a raised guarantee leaves used + all shortfall above the limit, unless forced). Lowering
 *   a guarantee is never judged. setQuotas judges each listed kind the same way: guarantees'
 *   sum above the new limit (always), usage above it (unless forced), usage plus shortfall
 *   above it (unless forced).
 * - deleteProject: not-found for an unknown (or deleted) project; project-not-empty (nothing
 *   changes, not even expiries) while it has live allocations or pending holds, unless cascade,
 *   which (after the organization's expiries) deletes each allocation and releases each hold
 *   in id order, each journaled, then journals project.deleted; its caps and guarantees go.
 *   The id can be put again as a new, empty project.
 * - Precedence when several refusals apply (DESIGN.md does not fix it; this is the order the
 *   ledger checks in, kept so the test can compare codes): a malformed request (a kind listed
 *   twice: invalid-request) before anything is read, then unknown project or allocation/hold
 *   (not-found), then hold-already-resolved, then a stale generation (precondition-failed),
 *   then confirm-exceeds-hold / unknown kind (invalid-request), then duplicate, then quota.
 */

/** What the ledger reports as the limit of an unlimited kind (`quantityMax`). */
export const unlimited = Number.MAX_SAFE_INTEGER;

export interface ModelLine {
  kind: string;
  committed: number;
  reserved: number;
}

export interface ModelResource {
  kind: string;
  id: string;
}

export interface ModelAllocation {
  id: string;
  organization: string;
  project: string;
  resource: ModelResource;
  /** Sorted by kind. */
  lines: ModelLine[];
  generation: number;
  live: boolean;
}

export type HoldStatus = 'pending' | 'confirmed' | 'released' | 'expired';

export interface ModelHold {
  id: string;
  organization: string;
  project: string;
  resource: ModelResource;
  /** What it holds, sorted by kind. */
  lines: ModelLine[];
  expiresAtMs: number;
  /** As the books have it: 'pending' until a committed transaction resolves it. */
  booked: HoldStatus;
  resolvedAtMs: number | null;
  generation: number;
  /** The live allocation a confirm made of it (same id). */
  allocation?: ModelAllocation;
}

/** What getHold should answer. */
export interface HoldView {
  id: string;
  organization: string;
  project: string;
  resource: ModelResource;
  allocations: ModelLine[];
  generation: number;
  status: HoldStatus;
  expiresAt: string;
  resolvedAt: string | null;
}

export type ViolationScope = 'project' | 'organization' | 'guarantees';

export interface ModelViolation {
  kind: string;
  scope: ViolationScope;
  requested: number;
  used: number;
  limit: number;
}

export interface BelowUsage {
  kind: string;
  quantity: number;
  used: number;
}

export interface OverGuaranteed {
  kind: string;
  guaranteed: number;
  quantity: number;
}

export interface Unavailable {
  kind: string;
  used: number;
  keptBack: number;
  quantity: number;
}

export interface ProjectQuota {
  cap: number | null;
  guaranteed: number;
}

export type Outcome<T = undefined> =
  | { ok: true; value: T }
  | { ok: false; code: 'invalid-request' }
  | { ok: false; code: 'not-found' }
  | { ok: false; code: 'duplicate-allocation'; existingAllocationId: string }
  | { ok: false; code: 'quota-exceeded'; violations: ModelViolation[] }
  | { ok: false; code: 'quota-below-usage'; belowUsage: BelowUsage[] }
  | { ok: false; code: 'guarantees-exceed-quota'; overGuaranteed: OverGuaranteed[] }
  | { ok: false; code: 'guarantee-unavailable'; unavailable: Unavailable[] }
  | { ok: false; code: 'project-not-empty'; live: { allocations: number; holds: number } }
  | { ok: false; code: 'precondition-failed'; currentGeneration: number }
  | { ok: false; code: 'hold-already-resolved'; resolution: Exclude<HoldStatus, 'pending'> }
  | { ok: false; code: 'confirm-exceeds-hold' };

export interface ModelQuota {
  kind: string;
  quantity: number | null;
  source: 'quota' | 'default' | 'unlimited';
  committed: number;
  reserved: number;
  held: number;
  used: number;
  overLimit: boolean;
  guaranteed: number;
  freeForAnyProject: number | null;
}

export interface ModelProjectQuota {
  kind: string;
  cap: number | null;
  guaranteed: number;
  committed: number;
  reserved: number;
  held: number;
  used: number;
  available: number | null;
  overCap: boolean;
}

export type JournalAction =
  | 'quota.set'
  | 'project-quota.set'
  | 'project.deleted'
  | 'allocation.created'
  | 'allocation.updated'
  | 'allocation.deleted'
  | 'hold.created'
  | 'hold.confirmed'
  | 'hold.released'
  | 'hold.expired';

export interface ModelJournalEntry {
  action: JournalAction;
  subject: string | null;
}

export interface ModelClock {
  nowMs(): number;
}

const byKind = <T extends { kind: string }>(a: T, b: T) =>
  a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0;

const listsKindTwice = (lines: readonly { kind: string }[]) =>
  new Set(lines.map((line) => line.kind)).size !== lines.length;

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });

const sortedLines = (lines: readonly ModelLine[]) =>
  [...lines].sort(byKind).map(({ kind, committed, reserved }) => ({ kind, committed, reserved }));

const isoOf = (ms: number) => new Date(ms).toISOString();

export class ReferenceModel {
  /** Kind name -> default quota (null: unlimited unless the organization sets a quota). */
  readonly kinds = new Map<string, number | null>();
  /** Organization -> its projects. */
  readonly projects = new Map<string, Set<string>>();
  /** `${organization}/${kind}` -> explicit quota. */
  private readonly quotas = new Map<string, number>();
  /** `${organization}/${kind}` for kinds a forced quota left over their limit. */
  private readonly forcedOver = new Set<string>();
  /** Every allocation ever created (confirmed holds included), live or deleted, in creation order. */
  readonly allocations: ModelAllocation[] = [];
  /** Every hold ever created, whatever became of it, in creation order. */
  readonly holds: ModelHold[] = [];
  /** Organization -> the journal entries it should have, oldest first. */
  private readonly journals = new Map<string, ModelJournalEntry[]>();
  /** `${organization}/${project}/${kind}` -> the project's cap and guarantee. */
  private readonly projectQuotas = new Map<string, ProjectQuota>();
  /** `${organization}/${project}/${kind}` for kinds a forced cap left over it. */
  private readonly forcedOverCap = new Set<string>();
  /** `${organization}/${kind}` where a forced change left usage plus unused guarantees over the limit. */
  private readonly forcedOverGuarantees = new Set<string>();

  /** `clock` is the clock the ledger runs on: the model reads the same time. */
  constructor(readonly clock: ModelClock = { nowMs: () => 0 }) {}

  /** A copy of the model's state, to go back to (an atomic batch that is refused). */
  snapshot(): Record<string, unknown> {
    // One structuredClone of everything: objects shared between fields (a confirmed hold is
    // also an allocation) stay shared in the copy.
    const state: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this)) if (name !== 'clock') state[name] = value;
    return structuredClone(state);
  }

  restore(state: Record<string, unknown>): void {
    for (const [name, saved] of Object.entries(state)) {
      const current = (this as unknown as Record<string, unknown>)[name];
      if (current instanceof Map) {
        current.clear();
        for (const [key, value] of saved as Map<unknown, unknown>) current.set(key, value);
      } else if (current instanceof Set) {
        current.clear();
        for (const value of saved as Set<unknown>) current.add(value);
      } else if (Array.isArray(current)) {
        current.length = 0;
        current.push(...(saved as unknown[]));
      }
    }
  }

  addKind(name: string, kindDefault: number | null) {
    this.kinds.set(name, kindDefault);
  }

  addProject(organization: string, project: string) {
    const projects = this.projects.get(organization) ?? new Set<string>();
    projects.add(project);
    this.projects.set(organization, projects);
  }

  limitOf(organization: string, kind: string): number {
    return this.quotas.get(`${organization}/${kind}`) ?? this.kinds.get(kind) ?? unlimited;
  }

  // Holds and time.

  /** A hold's status now: a pending hold whose time has passed is expired, resolved or not. */
  statusOf(hold: ModelHold): HoldStatus {
    return hold.booked === 'pending' && hold.expiresAtMs <= this.clock.nowMs() ? 'expired' : hold.booked;
  }

  /** Pending in the books, but its time has passed: the next committed decision resolves it. */
  isDue(hold: ModelHold): boolean {
    return hold.booked === 'pending' && hold.expiresAtMs <= this.clock.nowMs();
  }

  /** Holds that still count for decisions. */
  pendingHolds(): ModelHold[] {
    return this.holds.filter((h) => this.statusOf(h) === 'pending');
  }

  pendingHoldsOf(organization: string, project: string): ModelHold[] {
    return this.pendingHolds().filter((h) => h.organization === organization && h.project === project);
  }

  holdView(hold: ModelHold): HoldView {
    const current = hold.allocation;
    return {
      id: hold.id,
      organization: hold.organization,
      project: hold.project,
      resource: { ...(current?.resource ?? hold.resource) },
      allocations: sortedLines(current?.lines ?? hold.lines),
      generation: current?.generation ?? hold.generation,
      status: this.statusOf(hold),
      expiresAt: isoOf(hold.expiresAtMs),
      resolvedAt: hold.resolvedAtMs === null ? null : isoOf(hold.resolvedAtMs),
    };
  }

  /**
   * What a committed transaction on the organization does first: resolves its expired holds,
   * in id order, each with its own journal entry.
   */
  private settle(organization: string): void {
    const due = this.holds
      .filter((h) => h.organization === organization && this.isDue(h))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const hold of due) {
      hold.booked = 'expired';
      hold.resolvedAtMs = this.clock.nowMs();
      hold.generation += 1;
      this.journal(organization, 'hold.expired', hold.id);
    }
  }

  /** sweepExpiredHolds: every organization settles; returns how many holds expired. */
  sweep(): number {
    const organizations = [...new Set(this.holds.filter((h) => this.isDue(h)).map((h) => h.organization))];
    let expired = 0;
    for (const organization of organizations) {
      expired += this.holds.filter((h) => h.organization === organization && this.isDue(h)).length;
      this.settle(organization);
    }
    return expired;
  }

  /** Expired holds the books still count (no committed decision or sweep since). */
  dueHolds(): ModelHold[] {
    return this.holds.filter((h) => this.isDue(h));
  }

  // Usage.

  /** Usage as a decision sees it: live allocations and holds still pending now. */
  usageOf(organization: string, kind: string): { committed: number; reserved: number; held: number } {
    return this.usage(organization, kind, (h) => this.statusOf(h) === 'pending');
  }

  /** Usage as the stored counters have it: an expired hold counts until it is resolved. */
  booksOf(organization: string, kind: string): { committed: number; reserved: number; held: number } {
    return this.usage(organization, kind, (h) => h.booked === 'pending');
  }

  private usage(organization: string, kind: string, counts: (hold: ModelHold) => boolean, project?: string) {
    let committed = 0;
    let reserved = 0;
    let held = 0;
    for (const allocation of this.allocations) {
      if (!allocation.live || allocation.organization !== organization) continue;
      if (project !== undefined && allocation.project !== project) continue;
      for (const line of allocation.lines) {
        if (line.kind !== kind) continue;
        committed += line.committed;
        reserved += line.reserved;
      }
    }
    for (const hold of this.holds) {
      if (hold.organization !== organization || !counts(hold)) continue;
      if (project !== undefined && hold.project !== project) continue;
      for (const line of hold.lines) if (line.kind === kind) held += line.committed + line.reserved;
    }
    return { committed, reserved, held };
  }

  /** committed + reserved + held, as a decision sees it. */
  usedOf(organization: string, kind: string): number {
    const { committed, reserved, held } = this.usageOf(organization, kind);
    return committed + reserved + held;
  }

  /** One project's usage of a kind, as a decision sees it. */
  projectUsageOf(organization: string, project: string, kind: string) {
    return this.usage(organization, kind, (h) => this.statusOf(h) === 'pending', project);
  }

  projectUsedOf(organization: string, project: string, kind: string): number {
    const { committed, reserved, held } = this.projectUsageOf(organization, project, kind);
    return committed + reserved + held;
  }

  projectQuotaOf(organization: string, project: string, kind: string): ProjectQuota {
    return this.projectQuotas.get(`${organization}/${project}/${kind}`) ?? { cap: null, guaranteed: 0 };
  }

  /** Projects of the organization with a guarantee of the kind (deleted ones have none). */
  private guaranteedProjects(organization: string, kind: string): string[] {
    return [...(this.projects.get(organization) ?? [])].filter(
      (project) => this.projectQuotaOf(organization, project, kind).guaranteed > 0,
    );
  }

  /** The sum of the projects' guarantees of the kind. */
  guaranteedOf(organization: string, kind: string): number {
    return this.guaranteedProjects(organization, kind).reduce(
      (sum, project) => sum + this.projectQuotaOf(organization, project, kind).guaranteed,
      0,
    );
  }

  /** What the guarantees of every project but `except` keep back unused. */
  keptBackOf(organization: string, kind: string, except?: string): number {
    return this.guaranteedProjects(organization, kind)
      .filter((project) => project !== except)
      .reduce((sum, project) => {
        const { guaranteed } = this.projectQuotaOf(organization, project, kind);
        return sum + Math.max(0, guaranteed - this.projectUsedOf(organization, project, kind));
      }, 0);
  }

  /**
   * What a project can take of a kind now, were `ownUsed` of its usage freed first (a replace
   * frees its own lines); Infinity when nothing limits it.
   */
  roomOf(organization: string, project: string, kind: string, ownUsed = 0): number {
    const { cap } = this.projectQuotaOf(organization, project, kind);
    const byCap = cap === null ? Infinity : cap - (this.projectUsedOf(organization, project, kind) - ownUsed);
    const limit = this.limitOf(organization, kind);
    const byOrganization =
      limit === unlimited
        ? Infinity
        : limit - (this.usedOf(organization, kind) - ownUsed) - this.keptBackOf(organization, kind, project);
    return Math.min(byCap, byOrganization);
  }

  /** What getProjectQuotaSet should report (sorted by kind). */
  projectQuotasOf(organization: string, project: string): ModelProjectQuota[] {
    return [...this.kinds.keys()].sort().map((kind) => {
      const { cap, guaranteed } = this.projectQuotaOf(organization, project, kind);
      const { committed, reserved, held } = this.projectUsageOf(organization, project, kind);
      const used = committed + reserved + held;
      const quantity = this.quotas.get(`${organization}/${kind}`) ?? this.kinds.get(kind) ?? null;
      const room = this.roomOf(organization, project, kind);
      return {
        kind,
        cap,
        guaranteed,
        committed,
        reserved,
        held,
        used,
        available: quantity === null && cap === null ? null : Math.max(0, room),
        overCap: cap !== null && used > cap,
      };
    });
  }

  /** True while a forced cap keeps the project's kind over it. */
  isForcedOverCap(organization: string, project: string, kind: string): boolean {
    const key = `${organization}/${project}/${kind}`;
    const { cap } = this.projectQuotaOf(organization, project, kind);
    if (this.forcedOverCap.has(key) && (cap === null || this.projectUsedOf(organization, project, kind) <= cap)) {
      this.forcedOverCap.delete(key);
    }
    return this.forcedOverCap.has(key);
  }

  /** True while a forced change keeps usage plus unused guarantees over the limit. */
  isForcedOverGuarantees(organization: string, kind: string): boolean {
    const key = `${organization}/${kind}`;
    if (
      this.forcedOverGuarantees.has(key) &&
      this.usedOf(organization, kind) + this.keptBackOf(organization, kind) <= this.limitOf(organization, kind)
    ) {
      this.forcedOverGuarantees.delete(key);
    }
    return this.forcedOverGuarantees.has(key);
  }

  private noteForced(organization: string, kind: string): void {
    const used = this.usedOf(organization, kind);
    const limit = this.limitOf(organization, kind);
    if (used > limit) this.forcedOver.add(`${organization}/${kind}`);
    if (used + this.keptBackOf(organization, kind) > limit) this.forcedOverGuarantees.add(`${organization}/${kind}`);
  }

  /** What `getQuotas` should report for one organization's kinds (sorted by kind). */
  quotasOf(organization: string): ModelQuota[] {
    return [...this.kinds.keys()].sort().map((kind) => {
      const quota = this.quotas.get(`${organization}/${kind}`) ?? null;
      const kindDefault = this.kinds.get(kind) ?? null;
      const source = quota !== null ? 'quota' : kindDefault !== null ? 'default' : 'unlimited';
      const quantity = quota ?? kindDefault;
      const { committed, reserved, held } = this.usageOf(organization, kind);
      const used = committed + reserved + held;
      return {
        kind,
        quantity,
        source,
        committed,
        reserved,
        held,
        used,
        overLimit: quantity !== null && used > quantity,
        guaranteed: this.guaranteedOf(organization, kind),
        freeForAnyProject: quantity === null ? null : Math.max(0, quantity - used - this.keptBackOf(organization, kind)),
      };
    });
  }

  /** True while a forced quota keeps the kind over its limit (invariant 1's one exception). */
  isForcedOver(organization: string, kind: string): boolean {
    const key = `${organization}/${kind}`;
    // Once usage is back within the limit (a hold's expiry is enough), only checked increases
    // can follow: the exception ends.
    if (this.forcedOver.has(key) && this.usedOf(organization, kind) <= this.limitOf(organization, kind)) {
      this.forcedOver.delete(key);
    }
    return this.forcedOver.has(key);
  }

  liveAllocationsOf(organization: string, project: string): ModelAllocation[] {
    return this.allocations.filter(
      (a) => a.live && a.organization === organization && a.project === project,
    );
  }

  journalOf(organization: string): ModelJournalEntry[] {
    return this.journals.get(organization) ?? [];
  }

  private journal(organization: string, action: JournalAction, subject: string | null) {
    const entries = this.journals.get(organization) ?? [];
    entries.push({ action, subject });
    this.journals.set(organization, entries);
  }

  // Operations. Each decides, and applies only what it allows.

  setQuotas(
    organization: string,
    inputs: readonly { kind: string; quantity: number | null }[],
    force: boolean,
  ): Outcome {
    if (inputs.some((input) => !this.kinds.has(input.kind))) return { ok: false, code: 'invalid-request' };
    const refusals = new Refusals();
    for (const input of [...inputs].sort(byKind)) {
      const limitAfter = input.quantity ?? this.kinds.get(input.kind) ?? unlimited;
      refusals.organization(input.kind, {
        used: this.usedOf(organization, input.kind),
        guaranteed: this.guaranteedOf(organization, input.kind),
        keptBack: this.keptBackOf(organization, input.kind),
        limit: limitAfter,
        force,
        usage: true,
      });
    }
    const refused = refusals.outcome();
    if (refused) return refused;
    this.settle(organization);
    for (const input of inputs) {
      const key = `${organization}/${input.kind}`;
      if (input.quantity === null) this.quotas.delete(key);
      else this.quotas.set(key, input.quantity);
      this.noteForced(organization, input.kind);
    }
    this.journal(organization, 'quota.set', null);
    return ok(undefined);
  }

  setProjectQuotas(
    organization: string,
    project: string,
    inputs: readonly { kind: string; cap: number | null; guaranteed: number | null }[],
    force: boolean,
  ): Outcome {
    if (listsKindTwice(inputs)) return { ok: false, code: 'invalid-request' };
    if (inputs.some((input) => input.cap !== null && (input.guaranteed ?? 0) > input.cap)) {
      return { ok: false, code: 'invalid-request' };
    }
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    if (inputs.some((input) => !this.kinds.has(input.kind))) return { ok: false, code: 'invalid-request' };
    const refusals = new Refusals();
    for (const input of [...inputs].sort(byKind)) {
      const { kind } = input;
      const before = this.projectQuotaOf(organization, project, kind);
      const guaranteed = input.guaranteed ?? 0;
      const projectUsed = this.projectUsedOf(organization, project, kind);
      refusals.cap(kind, input.cap, projectUsed, force);
      if (guaranteed > before.guaranteed) {
        const ownBefore = Math.max(0, before.guaranteed - projectUsed);
        const ownAfter = Math.max(0, guaranteed - projectUsed);
        refusals.organization(kind, {
          used: this.usedOf(organization, kind),
          guaranteed: this.guaranteedOf(organization, kind) - before.guaranteed + guaranteed,
          keptBack: this.keptBackOf(organization, kind) - ownBefore + ownAfter,
          limit: this.limitOf(organization, kind),
          force,
          usage: false,
        });
      }
    }
    const refused = refusals.outcome();
    if (refused) return refused;
    this.settle(organization);
    for (const input of inputs) {
      const key = `${organization}/${project}/${input.kind}`;
      this.projectQuotas.set(key, { cap: input.cap, guaranteed: input.guaranteed ?? 0 });
      if (input.cap !== null && this.projectUsedOf(organization, project, input.kind) > input.cap) this.forcedOverCap.add(key);
      this.noteForced(organization, input.kind);
    }
    this.journal(organization, 'project-quota.set', null);
    return ok(undefined);
  }

  deleteProject(organization: string, project: string, cascade: boolean): Outcome<{ allocations: number; holds: number }> {
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    const allocations = this.liveAllocationsOf(organization, project);
    const holds = this.pendingHoldsOf(organization, project);
    const live = { allocations: allocations.length, holds: holds.length };
    if (!cascade && allocations.length + holds.length > 0) return { ok: false, code: 'project-not-empty', live };
    this.settle(organization);
    const ended = [
      ...allocations.map((allocation) => ({ id: allocation.id, allocation, hold: undefined })),
      ...holds.map((hold) => ({ id: hold.id, allocation: undefined, hold })),
    ].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const { id, allocation, hold } of ended) {
      if (allocation) {
        allocation.live = false;
        allocation.generation += 1;
        this.journal(organization, 'allocation.deleted', id);
      } else {
        hold!.booked = 'released';
        hold!.resolvedAtMs = this.clock.nowMs();
        hold!.generation += 1;
        this.journal(organization, 'hold.released', id);
      }
    }
    for (const key of [...this.projectQuotas.keys()]) {
      if (key.startsWith(`${organization}/${project}/`)) this.projectQuotas.delete(key);
    }
    for (const key of [...this.forcedOverCap]) {
      if (key.startsWith(`${organization}/${project}/`)) this.forcedOverCap.delete(key);
    }
    this.projects.get(organization)!.delete(project);
    this.journal(organization, 'project.deleted', null);
    return ok(live);
  }

  /** putProject of a project that is not there (new, or deleted): a new, empty project. */
  hasProject(organization: string, project: string): boolean {
    return this.projects.get(organization)?.has(project) ?? false;
  }

  createAllocation(
    organization: string,
    project: string,
    id: string,
    resource: ModelResource,
    lines: readonly ModelLine[],
  ): Outcome<ModelAllocation> {
    if (listsKindTwice(lines)) return { ok: false, code: 'invalid-request' };
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    const refused = this.refusal(organization, project, null, resource, [], lines);
    if (refused) return refused;
    this.settle(organization);
    const allocation: ModelAllocation = {
      id,
      organization,
      project,
      resource: { ...resource },
      lines: sortedLines(lines),
      generation: 1,
      live: true,
    };
    this.allocations.push(allocation);
    this.journal(organization, 'allocation.created', id);
    return ok(allocation);
  }

  replaceAllocation(
    organization: string,
    project: string,
    id: string,
    resource: ModelResource,
    lines: readonly ModelLine[],
    ifGeneration?: number,
  ): Outcome<ModelAllocation> {
    if (listsKindTwice(lines)) return { ok: false, code: 'invalid-request' };
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    const allocation = this.find(organization, project, id);
    if (!allocation || !allocation.live) return { ok: false, code: 'not-found' };
    if (ifGeneration !== undefined && ifGeneration !== allocation.generation) {
      return { ok: false, code: 'precondition-failed', currentGeneration: allocation.generation };
    }
    const refused = this.refusal(organization, project, id, resource, allocation.lines, lines);
    if (refused) return refused;
    this.settle(organization);
    allocation.resource = { ...resource };
    allocation.lines = sortedLines(lines);
    allocation.generation += 1;
    this.journal(organization, 'allocation.updated', id);
    return ok(allocation);
  }

  deleteAllocation(
    organization: string,
    project: string,
    id: string,
    ifGeneration?: number,
  ): Outcome<{ deleted: boolean }> {
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    const allocation = this.find(organization, project, id);
    if (!allocation) return { ok: false, code: 'not-found' };
    if (!allocation.live) {
      this.settle(organization);
      return ok({ deleted: false });
    }
    if (ifGeneration !== undefined && ifGeneration !== allocation.generation) {
      return { ok: false, code: 'precondition-failed', currentGeneration: allocation.generation };
    }
    this.settle(organization);
    allocation.live = false;
    allocation.generation += 1;
    this.journal(organization, 'allocation.deleted', id);
    return ok({ deleted: true });
  }

  createHold(
    organization: string,
    project: string,
    id: string,
    resource: ModelResource,
    lines: readonly ModelLine[],
    ttlSeconds: number,
  ): Outcome<HoldView> {
    if (listsKindTwice(lines)) return { ok: false, code: 'invalid-request' };
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    const refused = this.refusal(organization, project, null, resource, [], lines);
    if (refused) return refused;
    this.settle(organization);
    const hold: ModelHold = {
      id,
      organization,
      project,
      resource: { ...resource },
      lines: sortedLines(lines),
      expiresAtMs: this.clock.nowMs() + ttlSeconds * 1000,
      booked: 'pending',
      resolvedAtMs: null,
      generation: 1,
    };
    this.holds.push(hold);
    this.journal(organization, 'hold.created', id);
    return ok(this.holdView(hold));
  }

  /** `lines` undefined confirms everything the hold holds. */
  confirmHold(
    organization: string,
    project: string,
    id: string,
    lines: readonly ModelLine[] | undefined,
    ifGeneration?: number,
  ): Outcome<HoldView> {
    if (lines !== undefined && (lines.length === 0 || listsKindTwice(lines))) {
      return { ok: false, code: 'invalid-request' };
    }
    const found = this.pendingHold(organization, project, id, ifGeneration);
    if (!found.ok) return found;
    const hold = found.value;
    const confirmed = lines ?? hold.lines;
    for (const line of confirmed) {
      const heldLine = hold.lines.find((l) => l.kind === line.kind);
      if (!heldLine || line.committed + line.reserved > heldLine.committed + heldLine.reserved) {
        return { ok: false, code: 'confirm-exceeds-hold' };
      }
    }
    this.settle(organization);
    hold.booked = 'confirmed';
    hold.resolvedAtMs = this.clock.nowMs();
    hold.generation += 1;
    const allocation: ModelAllocation = {
      id,
      organization,
      project,
      resource: { ...hold.resource },
      lines: sortedLines(confirmed),
      generation: hold.generation,
      live: true,
    };
    hold.allocation = allocation;
    this.allocations.push(allocation);
    this.journal(organization, 'hold.confirmed', id);
    return ok(this.holdView(hold));
  }

  releaseHold(organization: string, project: string, id: string, ifGeneration?: number): Outcome<HoldView> {
    const found = this.pendingHold(organization, project, id, ifGeneration);
    if (!found.ok) return found;
    const hold = found.value;
    this.settle(organization);
    hold.booked = 'released';
    hold.resolvedAtMs = this.clock.nowMs();
    hold.generation += 1;
    this.journal(organization, 'hold.released', id);
    return ok(this.holdView(hold));
  }

  /** The checks confirm and release share: found, still pending, generation. */
  private pendingHold(
    organization: string,
    project: string,
    id: string,
    ifGeneration: number | undefined,
  ): Outcome<ModelHold> {
    if (!this.projects.get(organization)?.has(project)) return { ok: false, code: 'not-found' };
    const hold = this.holds.find((h) => h.id === id && h.organization === organization && h.project === project);
    if (!hold) return { ok: false, code: 'not-found' };
    const status = this.statusOf(hold);
    if (status !== 'pending') {
      // This answer commits: the organization's expired holds (this one too) are resolved.
      this.settle(organization);
      return { ok: false, code: 'hold-already-resolved', resolution: status };
    }
    if (ifGeneration !== undefined && ifGeneration !== hold.generation) {
      return { ok: false, code: 'precondition-failed', currentGeneration: hold.generation };
    }
    return ok(hold);
  }

  private find(organization: string, project: string, id: string): ModelAllocation | undefined {
    return this.allocations.find(
      (a) => a.id === id && a.organization === organization && a.project === project,
    );
  }

  /** Why moving one allocation (or hold) from `before` to `after` is refused, if it is. */
  private refusal(
    organization: string,
    project: string,
    ownId: string | null,
    resource: ModelResource,
    before: readonly ModelLine[],
    after: readonly ModelLine[],
  ): Outcome<never> | undefined {
    if (after.some((line) => !this.kinds.has(line.kind))) return { ok: false, code: 'invalid-request' };
    const sameResource = (r: ModelResource) => r.kind === resource.kind && r.id === resource.id;
    const holder =
      this.allocations.find(
        (a) => a.live && a.id !== ownId && a.organization === organization && sameResource(a.resource),
      ) ??
      this.pendingHolds().find(
        (h) => h.id !== ownId && h.organization === organization && sameResource(h.resource),
      );
    if (holder) return { ok: false, code: 'duplicate-allocation', existingAllocationId: holder.id };
    const violations: ModelViolation[] = [];
    for (const kind of [...new Set([...before, ...after].map((l) => l.kind))].sort()) {
      const sum = (lines: readonly ModelLine[]) =>
        lines.filter((l) => l.kind === kind).reduce((s, l) => s + l.committed + l.reserved, 0);
      const delta = sum(after) - sum(before);
      if (delta <= 0) continue;
      const projectUsed = this.projectUsedOf(organization, project, kind);
      const { cap } = this.projectQuotaOf(organization, project, kind);
      if (cap !== null && projectUsed + delta > cap) {
        violations.push({ kind, scope: 'project', requested: delta, used: projectUsed, limit: cap });
      }
      const used = this.usedOf(organization, kind);
      const limit = this.limitOf(organization, kind);
      const keptBack = this.keptBackOf(organization, kind, project);
      if (used + delta > limit) {
        violations.push({ kind, scope: 'organization', requested: delta, used, limit });
      } else if (used + delta + keptBack > limit) {
        violations.push({ kind, scope: 'guarantees', requested: delta, used, limit: limit - keptBack });
      }
    }
    if (violations.length > 0) return { ok: false, code: 'quota-exceeded', violations };
    return undefined;
  }
}

/**
 * The refusals of a project quota change, collected over its kinds and answered most severe
 * first: guarantees above the limit, then a limit below usage (a quota's, or a cap below the
 * project's usage), then usage plus unused guarantees above the limit.
 */
class Refusals {
  private readonly overGuaranteed: OverGuaranteed[] = [];
  private readonly belowUsage: BelowUsage[] = [];
  private readonly unavailable: Unavailable[] = [];

  organization(
    kind: string,
    after: { used: number; guaranteed: number; keptBack: number; limit: number; force: boolean; usage: boolean },
  ): void {
    const { used, guaranteed, keptBack, limit, force, usage } = after;
    if (guaranteed > limit) this.overGuaranteed.push({ kind, guaranteed, quantity: limit });
    else if (usage && !force && used > limit) this.belowUsage.push({ kind, quantity: limit, used });
    else if (!force && used + keptBack > limit) this.unavailable.push({ kind, used, keptBack, quantity: limit });
  }

  cap(kind: string, cap: number | null, used: number, force: boolean): void {
    if (cap !== null && !force && cap < used) this.belowUsage.push({ kind, quantity: cap, used });
  }

  outcome(): Outcome<never> | undefined {
    if (this.overGuaranteed.length > 0) {
      return { ok: false, code: 'guarantees-exceed-quota', overGuaranteed: this.overGuaranteed };
    }
    if (this.belowUsage.length > 0) return { ok: false, code: 'quota-below-usage', belowUsage: this.belowUsage };
    if (this.unavailable.length > 0) return { ok: false, code: 'guarantee-unavailable', unavailable: this.unavailable };
    return undefined;
  }
}
