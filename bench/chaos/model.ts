/**
 * What the clients know: every allocation and hold they were told about, in the state the
 * last acknowledged answer left it; the operations still without an answer; the counts; and
 * the violations found on the way.
 */
import type { Random } from './random.js';

export interface Line {
  kind: string;
  committed: number;
  reserved: number;
}

export interface ResourceRef {
  kind: string;
  id: string;
}

export const byKind = (a: { kind: string }, b: { kind: string }) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);

/** Lines as allot answers them: sorted by kind, both quantities present. */
export function linesOf(value: unknown): Line[] | null {
  if (!Array.isArray(value)) return null;
  const lines: Line[] = [];
  for (const item of value as unknown[]) {
    const { kind, committed, reserved } = (item ?? {}) as Record<string, unknown>;
    if (typeof kind !== 'string' || typeof committed !== 'number' || typeof reserved !== 'number') return null;
    lines.push({ kind, committed, reserved });
  }
  return lines.sort(byKind);
}

export function sameLines(a: readonly Line[], b: readonly Line[]): boolean {
  const x = [...a].sort(byKind);
  const y = [...b].sort(byKind);
  return (
    x.length === y.length &&
    x.every((line, i) => line.kind === y[i]!.kind && line.committed === y[i]!.committed && line.reserved === y[i]!.reserved)
  );
}

export const showLines = (lines: readonly Line[]) =>
  `[${lines.map((l) => `${l.kind} ${l.committed}+${l.reserved}`).join(', ')}]`;

/**
 * live: an allocation (possibly a confirmed hold); deleted: an allocation deleted;
 * pending: a hold not yet resolved as far as the clients know (it may have expired since);
 * released, expired: a hold that ended so.
 */
export type EntityStatus = 'live' | 'deleted' | 'pending' | 'released' | 'expired';

export interface Entity {
  id: string;
  organization: string;
  project: string;
  resource: ResourceRef;
  status: EntityStatus;
  /** Created as a hold: the hold record stays readable (GET …/holds/{id}) whatever follows. */
  wasHold: boolean;
  /** The hold was confirmed (its hold record says `confirmed`). */
  confirmed: boolean;
  lines: Line[];
  expiresAtMs: number | null;
  /** An operation on it is under way: no other client touches it meanwhile. */
  busy: boolean;
  /** An operation on it never got an answer that could be established: no exact check. */
  uncertain: boolean;
  /** Learnt only after the run, from the stored answer of a request that was never answered. */
  learntAfterwards: boolean;
}

export type OpKind = 'create-allocation' | 'create-hold' | 'replace' | 'delete' | 'confirm' | 'release' | 'set-quota' | 'batch';

export interface HttpCall {
  method: 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  key: string;
}

export interface QuotaChange {
  kind: string;
  quantity: number | null;
}

/** One mutating request and what the client expects of it. */
export interface Op {
  kind: OpKind;
  call: HttpCall;
  organization: string;
  project: string;
  /** replace, delete, confirm, release: the target. */
  entity?: Entity;
  /** create, replace: the resource; create, replace: the lines asked for; confirm: the lines
   * to confirm (null: all that is held). */
  resource?: ResourceRef;
  lines?: Line[] | null;
  ttlSeconds?: number;
  quotas?: QuotaChange[];
  /** batch: its creates, in order, each as the request it would be on its own. */
  parts?: Op[];
  mode?: 'independent' | 'atomic';
  firstSentAt: number;
}

export class Stats {
  operations = 0;
  acknowledged = 0;
  denied = 0;
  /** Operations that needed more than one attempt. */
  retried = 0;
  attempts = 0;
  connectionErrors = 0;
  serverErrors = 0;
  inProgress = 0;
  unresolved = 0;
  resolvedFromStore = 0;
  resolvedNoEffect = 0;
  replaysChecked = 0;
  byKind: Record<string, { acknowledged: number; denied: number }> = {};

  count(kind: OpKind, verdict: 'acknowledged' | 'denied'): void {
    const entry = (this.byKind[kind] ??= { acknowledged: 0, denied: 0 });
    entry[verdict] += 1;
    this[verdict] += 1;
  }
}

export interface ViolationRecord {
  check: string;
  detail: string;
}

export class Violations {
  readonly list: ViolationRecord[] = [];

  add(check: string, detail: string): void {
    this.list.push({ check, detail });
  }

  get count(): number {
    return this.list.length;
  }
}

export class Model {
  readonly entities = new Map<string, Entity>();
  /** Operations that never got an answer, resolved after the run from the stored answers. */
  readonly unanswered: Op[] = [];
  /** Creates refused (alone or in a refused atomic batch): their resources must never appear. */
  readonly refused: Op[] = [];
  /** The latest moment a hold any client asked for can expire. */
  latestHoldExpiryMs = 0;
  private readonly live = new Set<Entity>();
  private readonly pending = new Set<Entity>();

  add(entity: Entity): void {
    this.entities.set(entity.id, entity);
    this.track(entity);
  }

  setStatus(entity: Entity, status: EntityStatus): void {
    this.live.delete(entity);
    this.pending.delete(entity);
    entity.status = status;
    this.track(entity);
  }

  /** Gives the entity up for further operations (its state is not known for sure). */
  abandon(entity: Entity): void {
    entity.uncertain = true;
    this.live.delete(entity);
    this.pending.delete(entity);
  }

  /** A live allocation no one is working on, marked busy; undefined if there is none. */
  takeLive(random: Random, organization?: string): Entity | undefined {
    return this.take(random, this.live, organization);
  }

  /** A hold believed pending, marked busy. Holds long past their expiry are dropped first. */
  takePending(random: Random, nowMs: number, organization?: string): Entity | undefined {
    for (const hold of this.pending) {
      if (hold.expiresAtMs !== null && hold.expiresAtMs < nowMs - 2_000) this.pending.delete(hold);
    }
    return this.take(random, this.pending, organization);
  }

  private take(random: Random, from: Set<Entity>, organization?: string): Entity | undefined {
    const free = [...from].filter((e) => !e.busy && (organization === undefined || e.organization === organization));
    if (free.length === 0) return undefined;
    const chosen = random.pick(free);
    chosen.busy = true;
    return chosen;
  }

  private track(entity: Entity): void {
    if (entity.uncertain) return;
    if (entity.status === 'live') this.live.add(entity);
    if (entity.status === 'pending') this.pending.add(entity);
  }
}
