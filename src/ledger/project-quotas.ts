/**
 * Project envelopes: per project and kind, a cap (a ceiling on the project's usage; caps may
 * add up to more than the organization's quota) and a guarantee (a part of the
 * organization's quota that no other project may take; guarantees never add up to more than
 * the quota). Decisions enforce both through the counters (see counters.ts); this file reads
 * and changes the envelopes, and deletes projects.
 */
import { availableTo, deltasBetween, effectiveLimit, shortfallOf, sumDeltas, usageOf } from '../domain/decision.js';
import { AllotError, notFound } from '../domain/errors.js';
import type { Executor } from '../store/store.js';
import type { WriteContext } from './context.js';
import {
  applyDeltas,
  ensureCounter,
  ensureProjectCounter,
  lockCounter,
  lockProjectCounter,
  usedOf,
} from './counters.js';
import { expireDueHolds, expiredHeldOf } from './holds.js';
import { appendJournal } from './journal.js';
import { requireKinds } from './kinds.js';
import { EnvelopeRefusals } from './quotas.js';
import { checkGeneration, readLinesOf, updateRecord, type AllocationRow } from './records.js';
import { requireProject } from './tenants.js';
import type { CheckedProjectQuotaInput, KindFormat, ProjectQuotaSet, ProjectQuotaUsage } from './types.js';

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

/**
 * Sets the listed kinds' caps and guarantees of a project (kinds not listed keep theirs).
 * Lowering a cap below the project's usage is refused unless `force`. Lowering a guarantee is
 * always allowed. Raising one is refused if the guarantees would add up to more than the
 * organization's quota (always), or if the organization's usage plus what the guarantees
 * keep back would exceed it (unless `force`).
 */
export async function writeProjectQuotas(
  context: WriteContext,
  organization: string,
  project: string,
  inputs: readonly CheckedProjectQuotaInput[],
  force: boolean,
  ifGeneration: number | undefined,
): Promise<void> {
  const { tx, dialect, nowMs } = context;
  // The project's row first (as a decision's key-share lock): a deletion waits for this.
  const current = await projectGenerationOf(tx, organization, project, dialect.lockRowsSuffix);
  const sorted = [...inputs].sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
  await requireKinds(tx, sorted.map((input) => input.kind), 'quotas');
  await expireDueHolds(context, organization, inputs.map(({ kind }) => ({ project, kind })));
  const refusals = new EnvelopeRefusals();
  const changes: { kind: string; before: { cap: number | null; guaranteed: number }; after: { cap: number | null; guaranteed: number }; shortfall: number }[] = [];
  for (const input of sorted) {
    await ensureProjectCounter(tx, organization, project, input.kind, nowMs);
    const own = (await lockProjectCounter(tx, dialect, organization, project, input.kind))!;
    await ensureCounter(context, organization, input.kind, nowMs);
    const row = (await lockCounter(tx, dialect, organization, input.kind))!;
    const projectUsed = usedOf(own);
    const shortfall = shortfallOf(input.guaranteed, projectUsed) - shortfallOf(own.guaranteed, projectUsed);
    let refused = refusals.checkCap(input.kind, input.cap, projectUsed, force);
    // Only a raised guarantee is judged: lowering one never takes anything from anyone.
    if (input.guaranteed > own.guaranteed) {
      refused =
        refusals.checkOrganization(input.kind, {
          used: usedOf(row),
          guaranteed: row.guaranteed - own.guaranteed + input.guaranteed,
          shortfall: row.shortfall + shortfall,
          limit: effectiveLimit(row.quota, row.kind_default),
          force,
        }, 'guarantee') || refused;
    }
    if (refused) continue;
    changes.push({
      kind: input.kind,
      before: { cap: own.cap, guaranteed: own.guaranteed },
      after: { cap: input.cap, guaranteed: input.guaranteed },
      shortfall,
    });
  }
  checkGeneration(current, ifGeneration);
  refusals.throwIfAny();
  for (const change of changes) {
    await tx.run(
      `UPDATE project_counters SET cap = ?, guaranteed = ?, updated_at = ?, updated_by = ?
        WHERE organization_id = ? AND project_id = ? AND kind = ?`,
      [change.after.cap, change.after.guaranteed, nowMs, context.principal, organization, project, change.kind],
    );
    await tx.run(
      `UPDATE quota_counters SET guaranteed = guaranteed + ?, shortfall = shortfall + ?, updated_at = ?
        WHERE organization_id = ? AND kind = ?`,
      [change.after.guaranteed - change.before.guaranteed, change.shortfall, nowMs, organization, change.kind],
    );
  }
  await tx.run('UPDATE projects SET quota_generation = quota_generation + 1 WHERE organization_id = ? AND id = ?', [
    organization,
    project,
  ]);
  appendJournal(context, {
    organization,
    project,
    action: 'project-quota.set',
    subject: null,
    changes: { quotas: changes.map(({ kind, before, after }) => ({ kind, before, after })), force },
    deltas: [],
  });
}

/**
 * Deletes a project. With live allocations or pending holds it is refused (409
 * project-not-empty) unless `cascade`, which deletes each allocation and releases each hold,
 * journaling each. Its caps and guarantees go with it (the guarantee is freed for the other
 * projects), and its project-member tokens are revoked. Returns what the cascade ended.
 */
export async function deleteProject(
  context: WriteContext,
  organization: string,
  project: string,
  cascade: boolean,
): Promise<{ allocations: number; holds: number }> {
  const { tx, dialect, nowMs } = context;
  // Excludes the key-share lock every decision in the project takes first: decisions in flight
  // commit before this goes on (and their allocations are seen below); later ones find the
  // project gone.
  await requireProject(tx, organization, project, dialect.exclusiveRowsSuffix);
  await expireDueHolds(context, organization);
  const rows = await tx.all<AllocationRow>(
    `SELECT * FROM allocations WHERE organization_id = ? AND project_id = ? AND deleted_at IS NULL
      ORDER BY id${dialect.lockRowsSuffix}`,
    [organization, project],
  );
  const live = {
    allocations: rows.filter((row) => row.state === 'live').length,
    holds: rows.filter((row) => row.state === 'held').length,
  };
  if (rows.length > 0 && !cascade) {
    throw new AllotError(
      'project-not-empty',
      `project "${project}" has ${live.allocations} live allocations and ${live.holds} pending holds`,
      { live },
    );
  }
  const lines = await readLinesOf(tx, rows.map((row) => row.id));
  const deltas = [];
  for (const row of rows) {
    const held = row.state === 'held';
    const before = lines.get(row.id) ?? [];
    const rowDeltas = deltasBetween(usageOf(before, held ? 'held' : 'live'), []);
    deltas.push(...rowDeltas);
    await updateRecord(context, row, held ? { resolution: 'released', resolved_at: nowMs, deleted_at: nowMs } : { deleted_at: nowMs });
    const resource = { kind: row.resource_kind, id: row.resource_id };
    appendJournal(context, {
      organization,
      project,
      action: held ? 'hold.released' : 'allocation.deleted',
      subject: row.id,
      changes: held ? { resource, held: before, cascade: true } : { resource, before, after: null, cascade: true },
      deltas: rowDeltas,
    });
  }
  await applyDeltas(context, organization, [{ project, deltas: sumDeltas(deltas) }]);
  // Its guarantees are given back: the sum and the shortfall lose what the project had.
  const counters = await tx.all<{ kind: string; guaranteed: number; committed: number; reserved: number; held: number }>(
    `SELECT kind, guaranteed, committed, reserved, held FROM project_counters
      WHERE organization_id = ? AND project_id = ? ORDER BY kind${dialect.lockRowsSuffix}`,
    [organization, project],
  );
  for (const counter of counters) {
    if (counter.guaranteed === 0) continue;
    await tx.run(
      `UPDATE quota_counters SET guaranteed = guaranteed - ?, shortfall = shortfall - ?, updated_at = ?
        WHERE organization_id = ? AND kind = ?`,
      [counter.guaranteed, shortfallOf(counter.guaranteed, usedOf(counter)), nowMs, organization, counter.kind],
    );
  }
  await tx.run('DELETE FROM project_counters WHERE organization_id = ? AND project_id = ?', [organization, project]);
  // Its limits go too: the controller then removes their trackers from the host services.
  await tx.run('DELETE FROM limits WHERE organization_id = ? AND project_id = ?', [organization, project]);
  await tx.run('DELETE FROM project_regions WHERE organization_id = ? AND project_id = ?', [organization, project]);
  await tx.run('UPDATE projects SET primary_region = NULL WHERE organization_id = ? AND id = ?', [organization, project]);
  await tx.run('UPDATE projects SET deleted_at = ?, updated_at = ? WHERE organization_id = ? AND id = ?', [
    nowMs,
    nowMs,
    organization,
    project,
  ]);
  await tx.run(
    `UPDATE tokens SET revoked_at = ? WHERE organization_id = ? AND project_id = ? AND revoked_at IS NULL`,
    [nowMs, organization, project],
  );
  appendJournal(context, {
    organization,
    project,
    action: 'project.deleted',
    subject: null,
    changes: { cascade, ended: live },
    deltas: [],
  });
  return live;
}
