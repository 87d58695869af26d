/**
 * Moving usage: a change of one project's usage, kind by kind, judged by the one statement of
 * the quota rule (`refusals` in domain/decision.ts) on the counters as they are now in the
 * working set (read under their locks), and applied to the project's counter and the
 * organization's. The SQL only loads and stores; this is where the rule decides.
 */
import { assert } from '../../domain/assert.js';
import { effectiveLimit, refusals, shortfallOf, type Delta } from '../../domain/decision.js';
import { AllotError, type Violation } from '../../domain/errors.js';
import type { WorkingSet } from './working-set.js';

const usedOf = (row: { committed: number; reserved: number; held: number }) => row.committed + row.reserved + row.held;

/** Why moving `project`'s usage by `deltas` is refused, per kind and level (empty: allowed). */
export function violationsOf(ws: WorkingSet, organization: string, project: string, deltas: readonly Delta[]): Violation[] {
  const found: Violation[] = [];
  for (const delta of deltas) {
    const own = ws.projectCounter(organization, project, delta.kind);
    const counter = ws.counter(organization, delta.kind);
    found.push(
      ...refusals(
        {
          kind: delta.kind,
          projectUsed: usedOf(own),
          cap: own.cap,
          guaranteed: own.guaranteed,
          organizationUsed: usedOf(counter),
          limit: effectiveLimit(counter.quota, counter.kindDefault),
          shortfall: counter.shortfall,
        },
        delta.used,
      ),
    );
  }
  return found;
}

/** Moves the usage if the rule allows it; else throws `quota-exceeded` naming every level. */
export function moveUsage(ws: WorkingSet, organization: string, project: string, deltas: readonly Delta[]): void {
  const violations = violationsOf(ws, organization, project, deltas);
  if (violations.length > 0) {
    const summary = violations
      .map((v) => `${v.kind} (${v.scope}): ${v.used} used + ${v.requested} requested > ${v.limit}`)
      .join('; ');
    throw new AllotError('quota-exceeded', `quota exceeded (${summary})`, { violations });
  }
  applyUsage(ws, organization, project, deltas);
}

/**
 * Applies a change of usage without judging it: for changes that cannot raise usage (a
 * delete, a release, an expiry), which pass even where a kind is over its limit.
 */
export function applyUsage(ws: WorkingSet, organization: string, project: string, deltas: readonly Delta[]): void {
  for (const delta of deltas) {
    const own = ws.projectCounter(organization, project, delta.kind);
    const counter = ws.counter(organization, delta.kind);
    const before = usedOf(own);
    ws.set(own, {
      committed: own.committed + delta.committed,
      reserved: own.reserved + delta.reserved,
      held: own.held + delta.held,
    });
    const after = usedOf(own);
    ws.set(counter, {
      committed: counter.committed + delta.committed,
      reserved: counter.reserved + delta.reserved,
      held: counter.held + delta.held,
      shortfall: counter.shortfall + shortfallOf(own.guaranteed, after) - shortfallOf(own.guaranteed, before),
    });
    assert(
      own.committed >= 0 && own.reserved >= 0 && own.held >= 0 && counter.committed >= 0 && counter.reserved >= 0 && counter.held >= 0,
      `usage of ${delta.kind} went below zero in ${organization}/${project}`,
    );
  }
}
