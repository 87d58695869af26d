/**
 * Webhook subscriptions as the organization page shows them: what each sends and how its
 * deliveries stand, in words (a state is said, never only coloured), and the alert levels a
 * usage bar draws. They are read once per page and shared by the quotas and webhooks sections.
 */
import { useEffect, useRef } from 'preact/hooks';
import { ApiError, type Delivery, type Subscription, type ThresholdSpec } from './api.js';
import type { Alert } from './components/UsageBar.js';
import { formatQuantity, formatTime, type KindFormat } from './format.js';
import { useLoad } from './hooks.js';
import type { Session } from './session.js';

export interface Subscriptions {
  /** undefined: not read yet; null: not this token's to see (refused with 403). */
  items: Subscription[] | null | undefined;
  error: unknown;
  reload(): void;
}

/** Bounds on how soon an unsettled delivery is read again. */
const pollMsMin = 1000;
const pollMsMax = 30_000;
/** A delivery about to be sent (behind the journal, resumed ones included): its outcome is worth reading soon. */
const sendingPollMs = 2000;

/**
 * The organization's subscriptions, read again with the page's numbers and, while a delivery
 * is unsettled (behind the journal's newest revision, or retrying), when its outcome
 * is due: the worker's progress writes no journal entry, so the live feed would not say.
 */
export function useSubscriptions(
  session: Session,
  organization: string,
  feed: { version: number; newestRevision: number },
  enabled: boolean,
): Subscriptions {
  // A refusal will not change for this token: asked once, not again at every journal entry.
  const refused = useRef(!enabled);
  const loaded = useLoad(async () => {
    if (refused.current) return null;
    try {
      return (await session.client.subscriptions(organization)).items;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 403)) throw error;
      refused.current = true;
      return null;
    }
  }, [session, organization, feed.version]);
  useEffect(() => {
    if (loaded.loading || !loaded.data) return;
    const wait = pollDelayOf(loaded.data, feed.newestRevision, Date.now());
    if (wait === null) return;
    const timer = setTimeout(loaded.reload, wait);
    return () => clearTimeout(timer);
  }, [loaded.data, loaded.error, loaded.loading]);
  return { items: loaded.data, error: loaded.error, reload: loaded.reload };
}

/**
 * When to read the subscriptions again for an unsettled delivery; null: all are settled. A
 * failing one waits to be resumed; an active one behind the newest revision (a change not
 * sent yet, or resumed and not delivered since) is about to be sent.
 */
function pollDelayOf(items: readonly Subscription[], newestRevision: number, nowMs: number): number | null {
  let wait: number | null = null;
  for (const delivery of items.flatMap((subscription) => subscription.deliveries)) {
    let due: number | null = null;
    if (delivery.state === 'retrying' && delivery.nextAttemptAt !== null) due = Date.parse(delivery.nextAttemptAt) - nowMs + 250;
    else if (delivery.state === 'active' && delivery.revision < newestRevision) due = sendingPollMs;
    if (due !== null) wait = Math.min(wait ?? pollMsMax, Math.max(pollMsMin, due));
  }
  return wait;
}

/** A subscription that stopped, or is retrying: Resume sends again at once. */
export const mayResume = (subscription: Subscription) =>
  subscription.state === 'failing' || subscription.deliveries.some((delivery) => delivery.state !== 'active');

const percent = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
export const percentOf = (fraction: number) => `${percent.format(fraction * 100)} %`;

/** A threshold set's levels as written: percentages of the limit, or quantities. */
function levelsText(spec: ThresholdSpec, format: KindFormat): string {
  if (spec.at !== undefined) return spec.at.map(percentOf).join(', ');
  return (spec.quantities ?? []).map((quantity) => formatQuantity(quantity, format)).join(', ');
}

export function thresholdText(spec: ThresholdSpec, format: KindFormat): string {
  const what = spec.scope === 'project' ? `${spec.kind} of project ${spec.project ?? '?'}` : spec.kind;
  const clears = spec.hysteresis === undefined ? '' : ` (cleared ${percentOf(spec.hysteresis)} below)`;
  return `${what} at ${levelsText(spec, format)}${clears}`;
}

/** Which journal entries it sends; null: none. A list left out matches everything. */
export function journalText(filter: Subscription['journal']): string | null {
  if (filter === null) return null;
  const list = (values: readonly string[]) => (values.length === 0 ? 'none' : values.join(', '));
  const parts = [
    filter.actions === undefined ? '' : `actions ${list(filter.actions)}`,
    filter.projects === undefined ? '' : `projects ${list(filter.projects)}`,
    filter.kinds === undefined ? '' : `kinds ${list(filter.kinds)}`,
  ].filter(Boolean);
  return parts.length === 0 ? 'Journal entries (all)' : `Journal entries: ${parts.join('; ')}`;
}

export function denialsText(denials: Subscription['denials']): string | null {
  if (denials === null) return null;
  const seconds = denials.intervalSeconds;
  return `Denial digest every ${seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`}`;
}

/** A delivery's state as a short phrase, and what went wrong last, if anything. */
export function deliveryText(delivery: Delivery): { state: string; error: string | null } {
  const error = delivery.lastError === null ? null : `Last error: ${delivery.lastError}`;
  if (delivery.state === 'failing') return { state: `⚠ failing since ${formatTime(delivery.failingSince)}`, error };
  if (delivery.state === 'retrying') {
    const attempts = `${delivery.attempts} failed attempt${delivery.attempts === 1 ? '' : 's'}`;
    return { state: `retrying: ${attempts}, next at ${formatTime(delivery.nextAttemptAt)}`, error };
  }
  return { state: 'active', error };
}

export const deliveredText = (delivery: Delivery) =>
  delivery.deliveredAt === null ? 'nothing yet' : `up to revision #${delivery.revision}, ${formatTime(delivery.deliveredAt)}`;

/**
 * The organization-scope alert levels of `kind` as fractions of its limit: `at` as written,
 * quantities divided by the limit. None against an unlimited (or zero) limit: nothing to place.
 */
export function alertsOf(thresholds: readonly ThresholdSpec[], kind: string, limit: number | null, format: KindFormat): Alert[] {
  if (limit === null || limit <= 0) return [];
  const byFraction = new Map<number, string>();
  for (const spec of thresholds) {
    if (spec.scope !== 'organization' || spec.kind !== kind) continue;
    // Where a quantity and a percentage coincide, one tick, named by the percentage.
    for (const fraction of spec.at ?? []) byFraction.set(fraction, percentOf(fraction));
    for (const quantity of spec.quantities ?? []) {
      if (!byFraction.has(quantity / limit)) byFraction.set(quantity / limit, formatQuantity(quantity, format));
    }
  }
  return [...byFraction].sort(([a], [b]) => a - b).map(([fraction, label]) => ({ fraction, label }));
}

/** The server's bounds: ten levels a set, each above 0 and at most ten times the limit. */
const levelsMax = 10;
const percentMax = 1000;

/** "80, 95, 100" as fractions of the limit; '' is none. Refused here with the reason. */
export function parsePercentages(text: string): { ok: true; fractions: number[] } | { ok: false; message: string } {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length > levelsMax) return { ok: false, message: `At most ${levelsMax} levels` };
  const values: number[] = [];
  for (const part of parts) {
    const value = /^[0-9]{1,4}(\.[0-9]{1,2})?$/.test(part) ? Number(part) : Number.NaN;
    if (!(value > 0 && value <= percentMax)) return { ok: false, message: `Percentages above 0 and at most ${percentMax}, not "${part}"` };
    if (values.includes(value)) return { ok: false, message: `${part} % is listed twice` };
    values.push(value);
  }
  return { ok: true, fractions: values.map((value) => value / 100) };
}
