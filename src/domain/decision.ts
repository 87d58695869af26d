/**
 * The pure rules of a decision. No I/O: the ledger reads the counters inside its transaction,
 * asks these functions, and writes what they allow.
 */
import { quantityMax } from './constants.js';
import type { Violation } from './errors.js';

export interface Line {
  kind: string;
  committed: number;
  reserved: number;
}

/** What one allocation or hold takes of one kind, as the counters see it. */
export interface Usage {
  kind: string;
  committed: number;
  reserved: number;
  /** What a pending hold takes: its committed + reserved, counted apart until confirmed. */
  held: number;
}

export interface Delta extends Usage {
  /** committed + reserved + held: what the decision checks against the limit. */
  used: number;
}

/** The usage of an allocation's lines: a live allocation commits and reserves, a hold holds. */
export function usageOf(lines: readonly Line[], state: 'live' | 'held'): Usage[] {
  return lines.map(({ kind, committed, reserved }) =>
    state === 'live'
      ? { kind, committed, reserved, held: 0 }
      : { kind, committed: 0, reserved: 0, held: committed + reserved },
  );
}

/**
 * The per-kind change from `before` to `after` (either may be empty: a create has no
 * `before`, a delete no `after`). Sorted by kind, so the ledger always locks counters in the
 * same order and two decisions never deadlock on each other.
 */
export function deltasBetween(before: readonly Usage[], after: readonly Usage[]): Delta[] {
  const byKind = new Map<string, Delta>();
  const add = (usage: Usage, sign: 1 | -1) => {
    const delta = byKind.get(usage.kind) ?? { kind: usage.kind, committed: 0, reserved: 0, held: 0, used: 0 };
    delta.committed += sign * usage.committed;
    delta.reserved += sign * usage.reserved;
    delta.held += sign * usage.held;
    delta.used = delta.committed + delta.reserved + delta.held;
    byKind.set(usage.kind, delta);
  };
  for (const usage of before) add(usage, -1);
  for (const usage of after) add(usage, 1);
  return [...byKind.values()]
    .filter((delta) => delta.committed !== 0 || delta.reserved !== 0 || delta.held !== 0)
    .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

/** Sums deltas of several changes made in one transaction, per kind, sorted by kind. */
export function sumDeltas(deltas: readonly Delta[]): Delta[] {
  return deltasBetween([], deltas);
}

/**
 * The limit in force for one organization and kind: its explicit quota, else the kind's
 * default, else unlimited (which is `quantityMax`, the largest quantity allot can count).
 */
export function effectiveLimit(quota: number | null, kindDefault: number | null): number {
  return quota ?? kindDefault ?? quantityMax;
}

/**
 * May usage move by `delta`? Yes if it does not rise (even when the kind is already over its
 * limit: reductions and reshuffles between committed and reserved always pass), or if the
 * result stays within the limit. Kinds are judged one by one, so an organization over quota in
 * one kind can still change the others.
 */
export function allows(used: number, delta: number, limit: number): boolean {
  return delta <= 0 || used + delta <= limit;
}

/** The part of a guarantee not in use yet: what no other project may take. */
export function shortfallOf(guaranteed: number, used: number): number {
  return Math.max(0, guaranteed - used);
}

/** What one decision on one kind of one project is judged against, read under the locks. */
export interface KindLevels {
  kind: string;
  /** The project's usage of the kind, and its cap (null: none) and guarantee (0: none). */
  projectUsed: number;
  cap: number | null;
  guaranteed: number;
  /** The organization's usage and limit, and the sum of every project's shortfall. */
  organizationUsed: number;
  limit: number;
  shortfall: number;
}

/**
 * The levels that refuse moving one project's usage of one kind by `delta` (empty: allowed).
 * A change that does not raise usage always passes. Otherwise the project must stay within
 * its cap; the organization within its quota; and the organization's usage plus what the
 * *other* projects' guarantees still keep back (their shortfall) within the quota too, so a
 * guarantee is never taken by another project. The guarantees level is only reported when
 * the organization level passes: it is the same limit less what others keep back.
 */
export function refusals(levels: KindLevels, delta: number): Violation[] {
  if (delta <= 0) return [];
  const { kind, projectUsed, cap, guaranteed, organizationUsed, limit, shortfall } = levels;
  const found: Violation[] = [];
  if (cap !== null && projectUsed + delta > cap) {
    found.push({ kind, scope: 'project', requested: delta, used: projectUsed, limit: cap });
  }
  const keptBack = shortfall - shortfallOf(guaranteed, projectUsed);
  if (organizationUsed + delta > limit) {
    found.push({ kind, scope: 'organization', requested: delta, used: organizationUsed, limit });
  } else if (organizationUsed + delta + keptBack > limit) {
    found.push({ kind, scope: 'guarantees', requested: delta, used: organizationUsed, limit: limit - keptBack });
  }
  return found;
}

/**
 * What a project can still take of a kind right now: the least of what its cap and the
 * organization (less what other projects' guarantees keep back) leave, never below 0.
 */
export function availableTo(levels: Omit<KindLevels, 'kind'>): number {
  const { projectUsed, cap, guaranteed, organizationUsed, limit, shortfall } = levels;
  const keptBack = shortfall - shortfallOf(guaranteed, projectUsed);
  const byOrganization = limit - organizationUsed - keptBack;
  const byCap = cap === null ? Number.POSITIVE_INFINITY : cap - projectUsed;
  return Math.max(0, Math.min(byOrganization, byCap));
}

/**
 * May a hold be confirmed as `confirmed`? Only kinds it holds, and per kind no more than it
 * holds (committed + reserved); the rest is freed. Returns the first kind that breaks this.
 */
export function confirmExceeding(held: readonly Line[], confirmed: readonly Line[]): string | null {
  const heldByKind = new Map(held.map((line) => [line.kind, line.committed + line.reserved]));
  for (const line of confirmed) {
    const available = heldByKind.get(line.kind);
    if (available === undefined || line.committed + line.reserved > available) return line.kind;
  }
  return null;
}

/**
 * A limit below current usage needs force; with force it leaves the kind over limit, where
 * `allows` lets through only changes that do not raise usage.
 */
export function limitChangeAllowed(used: number, limitAfter: number, force: boolean): boolean {
  return force || limitAfter >= used;
}
