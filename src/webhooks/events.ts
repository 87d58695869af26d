/**
 * The events a subscription sends for one journal entry, derived from the entry and the
 * cursor's state alone: delivering the same entry again sends the same events with the same
 * ids, so a receiver deduplicates by `webhook-id` and a crash between sending and recording
 * loses nothing.
 */
import { stepThresholds } from '../domain/thresholds.js';
import type { JournalEntry } from '../ledger/journal/journal.js';
import { limitOf, type CursorState, type JournalFilter, type ThresholdSpec, type Tracked } from '../ledger/subscriptions/subscriptions.js';

export interface WebhookEvent {
  /** Stable across resends: the receiver's deduplication key (`webhook-id`). */
  id: string;
  type: 'journal.entry' | 'threshold.crossed' | 'threshold.cleared' | 'denials.digest';
  /** When it happened (the entry's time), the same on every resend. */
  timestamp: string;
  data: Record<string, unknown>;
}

export interface Subscribed {
  id: string;
  journal: JournalFilter | null;
  thresholds: readonly ThresholdSpec[];
}

/** The kinds an entry is about: those its usage moved, and those whose quotas it set. */
function kindsOf(entry: JournalEntry): Set<string> {
  const kinds = new Set(entry.deltas.map((delta) => delta.kind));
  const quotas = (entry.changes as { quotas?: { kind?: unknown }[] }).quotas;
  if (Array.isArray(quotas)) for (const quota of quotas) if (typeof quota.kind === 'string') kinds.add(quota.kind);
  return kinds;
}

export function matches(filter: JournalFilter, entry: JournalEntry): boolean {
  if (filter.actions !== undefined && !filter.actions.includes(entry.action)) return false;
  if (filter.projects !== undefined && (entry.project === null || !filter.projects.includes(entry.project))) return false;
  if (filter.kinds !== undefined) {
    const kinds = kindsOf(entry);
    if (!filter.kinds.some((kind) => kinds.has(kind))) return false;
  }
  return true;
}

/** What a threshold set watches after `entry` (a new object; `tracked` is left alone). */
function trackedAfter(spec: ThresholdSpec, tracked: Tracked, entry: JournalEntry, kindDefault: number | null): Tracked {
  const next = { ...tracked, kindDefault: spec.scope === 'project' ? null : kindDefault };
  if (spec.scope === 'project' && entry.project !== spec.project) return next;
  if (spec.scope === 'project' && entry.action === 'project.deleted') return { ...next, used: 0, quota: null };
  for (const delta of entry.deltas) {
    if (delta.kind === spec.kind) next.used += delta.committed + delta.reserved + delta.held;
  }
  const setAction = spec.scope === 'project' ? 'project-quota.set' : 'quota.set';
  if (entry.action === setAction) {
    const quotas = (entry.changes as { quotas?: { kind: string; after: unknown }[] }).quotas ?? [];
    for (const change of quotas) {
      if (change.kind !== spec.kind) continue;
      const after = spec.scope === 'project' ? (change.after as { cap: number | null }).cap : (change.after as number | null);
      next.quota = after;
    }
  }
  return next;
}

/** The events of one entry, and the cursor's state after it. */
export function eventsOfEntry(
  subscription: Subscribed,
  entry: JournalEntry,
  state: CursorState,
  kindDefaults: ReadonlyMap<string, number | null>,
): { events: WebhookEvent[]; state: CursorState } {
  const base = `${subscription.id}:${entry.organization}:${entry.revision}`;
  const events: WebhookEvent[] = [];
  if (subscription.journal !== null && matches(subscription.journal, entry)) {
    events.push({ id: `${base}:journal`, type: 'journal.entry', timestamp: entry.at, data: { ...entry } });
  }
  const next: CursorState = { tracked: [], above: [] };
  subscription.thresholds.forEach((spec, i) => {
    const tracked = trackedAfter(spec, state.tracked[i]!, entry, kindDefaults.get(spec.kind) ?? null);
    const limit = limitOf(spec, tracked);
    const stepped = stepThresholds(spec, state.above[i]!, tracked.used, limit);
    next.tracked.push(tracked);
    next.above.push(stepped.above);
    for (const event of stepped.events) {
      events.push({
        id: `${base}:threshold:${i}:${event.index}:${event.type}`,
        type: event.type === 'crossed' ? 'threshold.crossed' : 'threshold.cleared',
        timestamp: entry.at,
        data: {
          organization: entry.organization,
          scope: spec.scope,
          project: spec.project ?? null,
          kind: spec.kind,
          ...(spec.at !== undefined ? { at: spec.at[event.index] } : { quantity: spec.quantities![event.index] }),
          // 0.8 × 7 is 5.6000000000000005 in binary: the receiver is shown 5.6.
          level: Number(event.level.toPrecision(12)),
          usage: event.usage,
          limit: event.limit,
          revision: entry.revision,
        },
      });
    }
  });
  return { events, state: next };
}

/** The denial digest of `[fromMs, toMs)`: refusals per kind and scope. */
export function digestEvent(
  subscription: string,
  organization: string,
  fromMs: number,
  toMs: number,
  denials: readonly { kind: string; scope: string; project: string | null; count: number }[],
): WebhookEvent {
  return {
    id: `${subscription}:${organization}:denials:${fromMs}`,
    type: 'denials.digest',
    timestamp: new Date(toMs).toISOString(),
    data: { organization, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), denials },
  };
}
