/**
 * Webhook subscriptions: where to send an organization's events (or every organization's),
 * and which. Each has a cursor per organization (cursors.ts) that its deliveries advance; a
 * new cursor starts at the organization's current revision with the threshold state of that
 * moment, read while the organization's row is locked, so no change falls between the two.
 */
import { randomBytes } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { v7 as uuidv7 } from 'uuid';
import { invalid, notFound } from '../../domain/errors.js';
import { checkThresholdLevels, initialState, levelCount } from '../../domain/thresholds.js';
import type * as wire from '../../schemas/index.js';
import type { Executor } from '../../store/store.js';
import { isoOf } from '../time.js';
import { checkId } from '../validate.js';
import { organizationValues, projectValues } from '../quotas/values.js';
import { deliveryOf, type CursorRow } from './cursors.js';

export type Subscription = Static<typeof wire.Subscription>;
export type SubscriptionInput = Static<typeof wire.SubscriptionBody>;
export type ThresholdSpec = Static<typeof wire.ThresholdSpec>;
export type JournalFilter = Static<typeof wire.JournalFilter>;

/** What a threshold set watches, as of the cursor's revision. For a project: quota is its cap. */
export interface Tracked {
  used: number;
  quota: number | null;
  kindDefault: number | null;
}

/** A cursor's threshold state: per threshold set, what it watches and which levels are above. */
export interface CursorState {
  tracked: Tracked[];
  above: boolean[][];
}

export interface SubscriptionRow {
  id: string;
  organization_id: string | null;
  url: string;
  secret: string;
  journal: string | null;
  thresholds: string;
  denials_interval_ms: number | string | null;
  created_by: string;
  created_at: number | string;
}

export const limitOf = (spec: ThresholdSpec, tracked: Tracked) =>
  spec.scope === 'project' ? tracked.quota : (tracked.quota ?? tracked.kindDefault);

export function checkSubscriptionInput(input: SubscriptionInput, organization: string | null): SubscriptionInput {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw invalid('url', 'must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('url', 'must be an http or https URL');
  if (url.username !== '' || url.password !== '') throw invalid('url', 'must not hold credentials (the signature authenticates)');
  const thresholds = input.thresholds ?? [];
  thresholds.forEach((spec, i) => {
    checkId(`thresholds[${i}].kind`, spec.kind);
    const problem = checkThresholdLevels(spec);
    if (problem !== null) throw invalid(`thresholds[${i}]`, problem);
    if (spec.scope === 'project' && spec.project === undefined) throw invalid(`thresholds[${i}].project`, 'is required for scope project');
    if (spec.scope === 'organization' && spec.project !== undefined) throw invalid(`thresholds[${i}].project`, 'is only for scope project');
    if (spec.scope === 'project' && organization === null) {
      throw invalid(`thresholds[${i}].scope`, "project thresholds belong in an organization's subscription");
    }
  });
  if (input.denials != null && input.denials.intervalSeconds % 60 !== 0) throw invalid('denials.intervalSeconds', 'must be whole minutes (a multiple of 60)');
  if (input.journal == null && thresholds.length === 0 && input.denials == null) {
    throw invalid('journal', 'a subscription sends journal entries, threshold events or a denial digest: name at least one');
  }
  return { url: url.href, journal: input.journal ?? null, thresholds, denials: input.denials ?? null };
}

/** The threshold state before an organization's first entry: nothing used, no level above. */
export const emptyState = (thresholds: readonly ThresholdSpec[]): CursorState => ({
  tracked: thresholds.map(() => ({ used: 0, quota: null, kindDefault: null })),
  above: thresholds.map((spec) => Array.from({ length: levelCount(spec) }, () => false)),
});

/** The threshold state of `organization` now; the caller holds the organization's row. */
export async function currentState(tx: Executor, organization: string, thresholds: readonly ThresholdSpec[]): Promise<CursorState> {
  const tracked: Tracked[] = [];
  for (const spec of thresholds) tracked.push(await trackedNow(tx, organization, spec));
  const above = thresholds.map((spec, i) => initialState(spec, tracked[i]!.used, limitOf(spec, tracked[i]!)));
  return { tracked, above };
}

async function trackedNow(tx: Executor, organization: string, spec: ThresholdSpec): Promise<Tracked> {
  const values = await organizationValues(tx, organization, spec.kind);
  if (values.kindDefault === undefined) throw invalid('thresholds', `resource kind "${spec.kind}" does not exist`);
  if (spec.scope === 'organization') return { used: values.used, quota: values.quota, kindDefault: values.kindDefault };
  const project = await projectValues(tx, organization, spec.project!, spec.kind);
  if (!project) throw invalid('thresholds', `project "${spec.project!}" does not exist in "${organization}"`);
  return { used: project.used, quota: project.cap, kindDefault: null };
}

/** Locks the organization's row (as a journal write does) and returns its revision. */
export async function lockRevision(tx: Executor, organization: string): Promise<number> {
  const row = await tx.get<{ revision: number | string }>('UPDATE organizations SET revision = revision WHERE id = ? RETURNING revision', [organization]);
  if (!row) throw notFound(`organization "${organization}"`);
  return Number(row.revision);
}

export async function insertCursor(tx: Executor, subscription: string, organization: string, revision: number, state: CursorState, nowMs: number) {
  await tx.run(
    `INSERT INTO subscription_cursors (subscription_id, organization_id, revision, state, digest_from)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    // The digest counts whole minutes (denials.ts), from the one this cursor starts in.
    [subscription, organization, revision, JSON.stringify(state), Math.floor(nowMs / 60_000) * 60_000],
  );
}

/** Makes a subscription and its cursors; returns it with its secret (shown once). */
export async function createSubscription(
  tx: Executor,
  organization: string | null,
  input: SubscriptionInput,
  principal: string,
  nowMs: number,
): Promise<Subscription & { secret: string }> {
  const id = uuidv7();
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const thresholds = input.thresholds ?? [];
  await tx.run(
    `INSERT INTO subscriptions (id, organization_id, url, secret, journal, thresholds, denials_interval_ms, created_by, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      organization,
      input.url,
      secret,
      input.journal == null ? null : JSON.stringify(input.journal),
      JSON.stringify(thresholds),
      input.denials == null ? null : input.denials.intervalSeconds * 1000,
      principal,
      nowMs,
    ],
  );
  // For every organization: the workers make each one's cursor (cursors.ts, missingCursors).
  if (organization !== null) {
    const revision = await lockRevision(tx, organization);
    await insertCursor(tx, id, organization, revision, await currentState(tx, organization, thresholds), nowMs);
  }
  return { ...(await readSubscription(tx, id, organization ?? undefined)), secret };
}

export function subscriptionOf(row: SubscriptionRow, cursors: readonly CursorRow[]): Subscription {
  const deliveries = cursors.map(deliveryOf);
  return {
    id: row.id,
    organization: row.organization_id,
    url: row.url,
    journal: row.journal === null ? null : (JSON.parse(row.journal) as JournalFilter),
    thresholds: JSON.parse(row.thresholds) as ThresholdSpec[],
    denials: row.denials_interval_ms === null ? null : { intervalSeconds: Number(row.denials_interval_ms) / 1000 },
    state: deliveries.some((delivery) => delivery.state === 'failing') ? 'failing' : 'active',
    deliveries,
    createdBy: row.created_by,
    createdAt: isoOf(Number(row.created_at)),
  };
}

/** A subscription; within `organization` when given (another organization's is not found). */
export async function readSubscription(tx: Executor, id: string, organization?: string): Promise<Subscription> {
  const row = await tx.get<SubscriptionRow>('SELECT * FROM subscriptions WHERE id = ?', [id]);
  if (!row || (organization !== undefined && row.organization_id !== organization)) throw notFound(`subscription "${id}"`);
  const cursors = await tx.all<CursorRow>('SELECT * FROM subscription_cursors WHERE subscription_id = ? ORDER BY organization_id', [id]);
  return subscriptionOf(row, cursors);
}

/** An organization's subscriptions (not the ones for every organization), or all of them. */
export async function listSubscriptions(tx: Executor, organization?: string): Promise<Subscription[]> {
  const rows =
    organization === undefined
      ? await tx.all<SubscriptionRow>('SELECT * FROM subscriptions ORDER BY id')
      : await tx.all<SubscriptionRow>('SELECT * FROM subscriptions WHERE organization_id = ? ORDER BY id', [organization]);
  const cursors =
    organization === undefined
      ? await tx.all<CursorRow>('SELECT * FROM subscription_cursors ORDER BY organization_id')
      : await tx.all<CursorRow>('SELECT * FROM subscription_cursors WHERE organization_id = ? ORDER BY organization_id', [organization]);
  return rows.map((row) => subscriptionOf(row, cursors.filter((cursor) => cursor.subscription_id === row.id)));
}

export async function deleteSubscription(tx: Executor, id: string, organization?: string): Promise<void> {
  await readSubscription(tx, id, organization);
  await tx.run('DELETE FROM subscription_cursors WHERE subscription_id = ?', [id]);
  await tx.run('DELETE FROM subscriptions WHERE id = ?', [id]);
}
