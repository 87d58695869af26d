import { effectiveLimit, limitChangeAllowed, shortfallOf } from '../../domain/decision.js';
import { AllotError, notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';

import { expiredHeldOf } from '../holds/reads.js';
import type { KindFormat, QuotaSet, QuotaSource, QuotaUsage } from '../types.js';

export interface QuotaRow {
  name: string;
  display_name: string;
  description: string;
  default_quota: number | null;
  format: KindFormat;
  quota: number | null;
  quota_generation: number | null;
  committed: number | null;
  reserved: number | null;
  held: number | null;
  guaranteed: number | null;
  shortfall: number | null;
  updated_by: string | null;
}

/**
 * Per kind (every kind, not only those with a quota row): the limit in force and its usage.
 * Holds that have expired but are not resolved yet (the next decision or the sweeper will)
 * are left out, as a decision would leave them out.
 */
export async function readQuotas(tx: Executor, organization: string, nowMs: number): Promise<QuotaSet> {
  const { generation } = await quotaGenerationOf(tx, organization);
  const expired = await expiredHeldOf(tx, organization, nowMs);
  const rows = await tx.all<QuotaRow>(
    `SELECT k.name, k.display_name, k.description,
        CASE WHEN c.kind IS NULL THEN k.default_quota ELSE c.kind_default END AS default_quota, k.format,
        c.quota, c.quota_generation, c.committed, c.reserved, c.held, c.guaranteed, c.shortfall, c.updated_by
      FROM resource_kinds k
      LEFT JOIN quota_counters c ON c.kind = k.name AND c.organization_id = ?
      ORDER BY k.name`,
    [organization],
  );
  const byKind = new Map(rows.map((row) => [row.name, row]));
  for (const { kind, held, guaranteed, used } of expired) {
    const row = byKind.get(kind);
    if (row?.held == null || row.shortfall == null) continue;
    row.held -= held;
    row.shortfall += shortfallOf(guaranteed, used - held) - shortfallOf(guaranteed, used);
  }
  return { organization, generation, quotas: rows.map(quotaUsageOf) };
}

/** The organization's quota generation (a missing organization is a 404), in one read. */
async function quotaGenerationOf(tx: Executor, organization: string, lock = '') {
  const row = await tx.get<{ quota_generation: number }>(
    `SELECT quota_generation FROM organizations WHERE id = ?${lock}`,
    [organization],
  );
  if (!row) throw notFound(`organization "${organization}"`);
  return { generation: row.quota_generation };
}

export function quotaUsageOf(row: QuotaRow): QuotaUsage {
  const committed = row.committed ?? 0;
  const reserved = row.reserved ?? 0;
  const held = row.held ?? 0;
  const used = committed + reserved + held;
  const source: QuotaSource =
    row.quota !== null ? 'quota' : row.default_quota !== null ? 'default' : 'unlimited';
  const quantity = source === 'unlimited' ? null : effectiveLimit(row.quota, row.default_quota);
  return {
    kind: row.name,
    displayName: row.display_name,
    description: row.description,
    default: row.default_quota,
    format: row.format,
    quantity,
    source,
    used,
    committed,
    reserved,
    held,
    generation: row.quota_generation ?? 0,
    updatedBy: row.updated_by,
    free: quantity === null ? null : Math.max(0, quantity - used),
    overLimit: quantity !== null && used > quantity,
    guaranteed: row.guaranteed ?? 0,
    freeForAnyProject: quantity === null ? null : Math.max(0, quantity - used - (row.shortfall ?? 0)),
  };
}

/**
 * The refusals of a change to a bound (an organization's quota, or a project's cap or
 * guarantee), collected over the kinds of one request and thrown together, most severe
 * first: guarantees that would add up to more than the quota (never allowed), then a limit
 * below usage, then usage plus what the guarantees keep back above the quota (both allowed
 * with force, which leaves the kind over limit: only changes that do not raise usage pass).
 */
export class QuotaChangeRefusals {
  private readonly overGuaranteed: { kind: string; guaranteed: number; quantity: number }[] = [];
  private readonly belowUsage: { kind: string; quantity: number; used: number }[] = [];
  private readonly unavailable: { kind: string; used: number; keptBack: number; quantity: number }[] = [];

  /**
   * Judges one kind's organization level as it would be after the change: its usage, the
   * guarantees' sum and shortfall, and the limit. True if refused.
   */
  checkOrganization(
    kind: string,
    after: { used: number; guaranteed: number; shortfall: number; limit: number; force: boolean },
    /** A quota change is judged against usage; a raised guarantee only against what it keeps back. */
    what: 'quota' | 'guarantee' = 'quota',
  ): boolean {
    const { used, guaranteed, shortfall, limit, force } = after;
    if (guaranteed > limit) {
      this.overGuaranteed.push({ kind, guaranteed, quantity: limit });
      return true;
    }
    if (what === 'quota' && !limitChangeAllowed(used, limit, force)) {
      this.belowUsage.push({ kind, quantity: limit, used });
      return true;
    }
    if (!force && used + shortfall > limit) {
      this.unavailable.push({ kind, used, keptBack: shortfall, quantity: limit });
      return true;
    }
    return false;
  }

  /** A project's cap below the project's usage, unless forced. True if refused. */
  checkCap(kind: string, cap: number | null, used: number, force: boolean): boolean {
    if (cap === null || limitChangeAllowed(used, cap, force)) return false;
    this.belowUsage.push({ kind, quantity: cap, used });
    return true;
  }

  throwIfAny(): void {
    if (this.overGuaranteed.length > 0) {
      const summary = this.overGuaranteed.map((o) => `${o.kind}: ${o.guaranteed} guaranteed > ${o.quantity}`).join('; ');
      throw new AllotError('guarantees-exceed-quota', `guarantees exceed the quota (${summary})`, {
        overGuaranteed: this.overGuaranteed,
      });
    }
    if (this.belowUsage.length > 0) {
      const summary = this.belowUsage.map((b) => `${b.kind}: ${b.quantity} < ${b.used} used`).join('; ');
      throw new AllotError('quota-below-usage', `quota below usage (${summary})`, { belowUsage: this.belowUsage });
    }
    if (this.unavailable.length > 0) {
      const summary = this.unavailable
        .map((u) => `${u.kind}: ${u.used} used + ${u.keptBack} kept back for guarantees > ${u.quantity}`)
        .join('; ');
      throw new AllotError('guarantee-unavailable', `guarantees cannot be met (${summary})`, {
        unavailable: this.unavailable,
      });
    }
  }
}
