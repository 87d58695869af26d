/**
 * Project quotas: per project and kind, a cap (a ceiling on the project's usage; caps may
 * add up to more than the organization's quota) and a guarantee (a part of the
 * organization's quota that no other project may take; guarantees never add up to more than
 * the quota). Decisions enforce both through the counters (see counters.ts); this file reads
 * and changes the project quotas, and deletes projects.
 */
import { availableTo, effectiveLimit, shortfallOf } from '../../domain/decision.js';
import { notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';

import { expiredHeldOf } from '../holds/reads.js';
import { requireProject } from '../catalog/tenants.js';
import type { KindFormat, ProjectQuotaSet, ProjectQuotaUsage } from '../types.js';

export interface ProjectQuotaRow {
  name: string;
  display_name: string;
  format: KindFormat;
  cap: number | null;
  guaranteed: number | null;
  committed: number | null;
  reserved: number | null;
  held: number | null;
  updated_by: string | null;
  quota: number | null;
  default_quota: number | null;
  organization_used: number | null;
  shortfall: number | null;
}

/**
 * Per kind (every kind): the project's cap, guarantee and usage, and what it can take now.
 * Expired but unresolved holds are left out, as the next decision would leave them out.
 */
export async function readProjectQuotas(
  tx: Executor,
  organization: string,
  project: string,
  nowMs: number,
): Promise<ProjectQuotaSet> {
  const { generation } = await projectGenerationOf(tx, organization, project);
  const rows = await tx.all<ProjectQuotaRow>(
    `SELECT k.name, k.display_name, k.format, p.cap, p.guaranteed, p.committed, p.reserved, p.held,
        p.updated_by, c.quota, CASE WHEN c.kind IS NULL THEN k.default_quota ELSE c.kind_default END AS default_quota,
        c.committed + c.reserved + c.held AS organization_used, c.shortfall
      FROM resource_kinds k
      LEFT JOIN project_counters p ON p.kind = k.name AND p.organization_id = ? AND p.project_id = ?
      LEFT JOIN quota_counters c ON c.kind = k.name AND c.organization_id = ?
      ORDER BY k.name`,
    [organization, project, organization],
  );
  const byKind = new Map(rows.map((row) => [row.name, row]));
  for (const expired of await expiredHeldOf(tx, organization, nowMs)) {
    const row = byKind.get(expired.kind)!;
    row.organization_used = (row.organization_used ?? 0) - expired.held;
    row.shortfall =
      (row.shortfall ?? 0) +
      shortfallOf(expired.guaranteed, expired.used - expired.held) -
      shortfallOf(expired.guaranteed, expired.used);
    if (expired.project === project) row.held = (row.held ?? 0) - expired.held;
  }
  return { organization, project, generation, quotas: rows.map(projectQuotaUsageOf) };
}

export function projectQuotaUsageOf(row: ProjectQuotaRow): ProjectQuotaUsage {
  const committed = row.committed ?? 0;
  const reserved = row.reserved ?? 0;
  const held = row.held ?? 0;
  const used = committed + reserved + held;
  const guaranteed = row.guaranteed ?? 0;
  const quantity = row.quota ?? row.default_quota;
  const unlimited = quantity === null && row.cap === null;
  return {
    kind: row.name,
    displayName: row.display_name,
    format: row.format,
    cap: row.cap,
    guaranteed,
    used,
    committed,
    reserved,
    held,
    available: unlimited
      ? null
      : availableTo({
          projectUsed: used,
          cap: row.cap,
          guaranteed,
          organizationUsed: row.organization_used ?? 0,
          limit: effectiveLimit(row.quota, row.default_quota),
          shortfall: row.shortfall ?? 0,
        }),
    overCap: row.cap !== null && used > row.cap,
    updatedBy: row.updated_by,
  };
}

async function projectGenerationOf(tx: Executor, organization: string, project: string, lock = '') {
  const row = await tx.get<{ quota_generation: number }>(
    `SELECT quota_generation FROM projects WHERE organization_id = ? AND id = ? AND deleted_at IS NULL${lock}`,
    [organization, project],
  );
  if (!row) {
    await requireProject(tx, organization, project); // names which of the two is missing
    throw notFound(`project "${project}" in organization "${organization}"`);
  }
  return { generation: row.quota_generation };
}
