/**
 * Limits: per (project, service, resource type, region) a configured limit, set by a
 * service-admin, and the usage reported from that region's host service (its tracker). The
 * active limit shown is max(configured, usage): lowering a limit below what is in use never
 * pretends the resources are gone; the gap (active − configured) shows until usage falls back
 * under the configured value. What the host enforces is the configured limit (or its escrow
 * share): usage never raises it.
 */
import { notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';
import type { WriteContext } from '../context.js';
import { appendJournal } from '../journal/journal.js';
import { requireOrganization, requireProject } from '../catalog/tenants.js';
import { decodeCursor, pageOf } from '../pages.js';
import { hostStatusOf } from './regions.js';
import { isoOf } from '../time.js';
import type { Limit, LimitRegion, CheckedLimitRegion, Page } from '../types.js';

interface HostColumns {
  host_ok_at: number | null;
  host_error_at: number | null;
  host_service: string | null;
  /** 1: the project has enabled regions, and not this one. */
  disabled: number | string;
}

interface LimitRow extends Partial<HostColumns> {
  organization_id: string;
  project_id: string;
  service: string;
  resource_type: string;
  region: string;
  configured: number;
  usage: number;
  usage_at: number | null;
  generation: number;
  updated_by: string;
  updated_at: number;
}

const regionOf = (row: LimitRow, nowMs: number): LimitRegion => {
  const active = Math.max(row.configured, row.usage);
  return {
    hostStatus: Number(row.disabled) === 1
      ? 'disabled'
      : row.host_service == null
        ? 'none'
        : hostStatusOf({ last_ok_at: row.host_ok_at ?? null, last_error_at: row.host_error_at ?? null }, nowMs),
    region: row.region,
    configuredLimit: row.configured,
    activeLimit: active,
    usage: row.usage,
    gap: active - row.configured,
    usageReportedAt: row.usage_at === null ? null : isoOf(row.usage_at),
    generation: row.generation,
    updatedBy: row.updated_by,
    updatedAt: isoOf(row.updated_at),
  };
};

/** Groups rows (sorted by service, type, region) into limits. */
function limitsOf(
  organization: string,
  project: string,
  rows: readonly (LimitRow & { global_limit: number | null })[],
  nowMs: number,
): Limit[] {
  const limits: Limit[] = [];
  for (const row of rows) {
    const last = limits.at(-1);
    if (last && last.service === row.service && last.resourceType === row.resource_type) {
      last.regions.push(regionOf(row, nowMs));
    } else {
      limits.push({
        organization,
        project,
        service: row.service,
        resourceType: row.resource_type,
        global: row.global_limit,
        regions: [regionOf(row, nowMs)],
      });
    }
  }
  return limits;
}

// With the limit's global bound, and how the region's own controller last fared syncing usage
// from the region's host of the limit's service (stale: the limit's usage may be old). Another
// region's controller reaching the host does not count: it does not refresh the usage. A region
// the project has enabled regions without is disabled: no controller keeps a tracker there.
const withGlobal = `SELECT l.*, g.global_limit, h.service AS host_service, h.usage_synced_at AS host_ok_at,
    h.usage_sync_failed_at AS host_error_at,
    CASE WHEN EXISTS (SELECT 1 FROM project_regions r WHERE r.organization_id = l.organization_id AND r.project_id = l.project_id)
      AND NOT EXISTS (SELECT 1 FROM project_regions r WHERE r.organization_id = l.organization_id AND r.project_id = l.project_id
        AND r.region = l.region) THEN 1 ELSE 0 END AS disabled
  FROM limits l
  LEFT JOIN global_limits g ON g.organization_id = l.organization_id AND g.project_id = l.project_id
    AND g.service = l.service AND g.resource_type = l.resource_type
  LEFT JOIN region_hosts h ON h.region = l.region AND h.service = l.service`;

export async function listLimits(tx: Executor, organization: string, project: string, nowMs: number): Promise<Limit[]> {
  await requireProject(tx, organization, project);
  const rows = await tx.all<LimitRow & { global_limit: number | null }>(
    `${withGlobal} WHERE l.organization_id = ? AND l.project_id = ? ORDER BY l.service, l.resource_type, l.region`,
    [organization, project],
  );
  return limitsOf(organization, project, rows, nowMs);
}

/**
 * An organization's limits, a page of projects at a time (every limit of a project is on the
 * same page); `project` narrows it to one.
 */
export async function listOrganizationLimits(
  tx: Executor,
  organization: string,
  filter: { project?: string; cursor?: string },
  limit: number,
  nowMs: number,
): Promise<Page<Limit>> {
  await requireOrganization(tx, organization);
  const after = decodeCursor(filter.cursor) ?? '';
  const projectFilter = filter.project === undefined ? '' : ' AND project_id = ?';
  const projectRows = await tx.all<{ project_id: string }>(
    `SELECT DISTINCT project_id FROM limits WHERE organization_id = ? AND project_id > ?${projectFilter}
      ORDER BY project_id LIMIT ?`,
    [organization, after, ...(filter.project === undefined ? [] : [filter.project]), limit + 1],
  );
  const page = pageOf(projectRows, limit, (row) => row.project_id);
  const items: Limit[] = [];
  const last = page.items.at(-1);
  if (last !== undefined) {
    const rows = await tx.all<LimitRow & { global_limit: number | null }>(
      `${withGlobal} WHERE l.organization_id = ? AND l.project_id >= ? AND l.project_id <= ?
        ORDER BY l.project_id, l.service, l.resource_type, l.region`,
      [organization, page.items[0]!.project_id, last.project_id],
    );
    for (const project of page.items) {
      items.push(...limitsOf(organization, project.project_id, rows.filter((row) => row.project_id === project.project_id), nowMs));
    }
  }
  return { items, nextCursor: page.nextCursor };
}

export async function readLimit(
  tx: Executor,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
  nowMs: number,
): Promise<Limit> {
  await requireProject(tx, organization, project);
  const rows = await tx.all<LimitRow & { global_limit: number | null }>(
    `${withGlobal} WHERE l.organization_id = ? AND l.project_id = ? AND l.service = ? AND l.resource_type = ?
      ORDER BY l.region`,
    [organization, project, service, resourceType],
  );
  if (rows.length === 0) throw notFound(`limit ${service}/${resourceType} of project "${project}"`);
  return limitsOf(organization, project, rows, nowMs)[0]!;
}

/**
 * Sets the configured limit of each listed region; regions not listed lose their limit. The
 * usage a region reported is kept, so its active limit is max(new configured, usage) at once.
 * A region whose limit does not change keeps its generation.
 */
export async function writeLimit(
  context: WriteContext,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
  regions: readonly CheckedLimitRegion[],
  global: number | null = null,
): Promise<void> {
  const { tx, dialect, nowMs, principal } = context;
  // The project's row, exclusively among limit writers: two writers of one project's limits
  // take turns, so each journals the limits it really replaced.
  await requireProject(context.tx, organization, project, context.dialect.lockRowsSuffix);
  const before = await tx.all<LimitRow>(
    `SELECT * FROM limits WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ?
      ORDER BY region${dialect.lockRowsSuffix}`,
    [organization, project, service, resourceType],
  );
  const listed = new Set(regions.map((r) => r.region));
  for (const row of before) {
    if (listed.has(row.region)) continue;
    await tx.run(
      `DELETE FROM limits WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ? AND region = ?`,
      [organization, project, service, resourceType, row.region],
    );
  }
  const globalBefore = await tx.get<{ global_limit: number }>(
    'SELECT global_limit FROM global_limits WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ?',
    [organization, project, service, resourceType],
  );
  if (global !== null) {
    // The regions' limits are shares the controller sets: a region new to the limit starts at
    // 0, the others keep theirs until the controller moves them.
    for (const { region } of regions) {
      await tx.run(
        `INSERT INTO limits (organization_id, project_id, service, resource_type, region, configured, updated_by,
            created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)
          ON CONFLICT (organization_id, project_id, service, resource_type, region) DO NOTHING`,
        [organization, project, service, resourceType, region, principal, nowMs, nowMs],
      );
    }
    await tx.run(
      `INSERT INTO global_limits (organization_id, project_id, service, resource_type, global_limit, updated_by, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (organization_id, project_id, service, resource_type)
        DO UPDATE SET global_limit = excluded.global_limit, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
      [organization, project, service, resourceType, global, principal, nowMs],
    );
  } else if (globalBefore) {
    await tx.run(
      'DELETE FROM global_limits WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ?',
      [organization, project, service, resourceType],
    );
  }
  for (const { region, limit } of global !== null ? [] : regions) {
    await tx.run(
      `INSERT INTO limits (organization_id, project_id, service, resource_type, region, configured, updated_by,
          created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (organization_id, project_id, service, resource_type, region)
        DO UPDATE SET configured = excluded.configured,
          generation = CASE WHEN limits.configured = excluded.configured THEN limits.generation ELSE limits.generation + 1 END,
          updated_by = CASE WHEN limits.configured = excluded.configured THEN limits.updated_by ELSE excluded.updated_by END,
          updated_at = CASE WHEN limits.configured = excluded.configured THEN limits.updated_at ELSE excluded.updated_at END`,
      [organization, project, service, resourceType, region, limit, principal, nowMs, nowMs],
    );
  }
  appendJournal(context, {
    organization,
    project,
    action: 'limit.set',
    subject: null,
    changes: {
      service,
      resourceType,
      before: before.map((row) => ({ region: row.region, limit: row.configured })),
      after: [...regions]
        .sort((a, b) => (a.region < b.region ? -1 : 1))
        .map(({ region, limit }) => (global === null ? { region, limit } : { region })),
      ...(global !== null || globalBefore ? { global: { before: globalBefore?.global_limit ?? null, after: global } } : {}),
    },
    deltas: [],
  });
}

/** Removes a limit in every region. Returns false if there was none. */
export async function deleteLimit(
  context: WriteContext,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
): Promise<boolean> {
  const { tx } = context;
  // The project's row, exclusively among limit writers: two writers of one project's limits
  // take turns, so each journals the limits it really replaced.
  await requireProject(context.tx, organization, project, context.dialect.lockRowsSuffix);
  const removed = await tx.run(
    'DELETE FROM limits WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ?',
    [organization, project, service, resourceType],
  );
  await tx.run(
    'DELETE FROM global_limits WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ?',
    [organization, project, service, resourceType],
  );
  if (removed === 0) return false;
  appendJournal(context, {
    organization,
    project,
    action: 'limit.deleted',
    subject: null,
    changes: { service, resourceType },
    deltas: [],
  });
  return true;
}

/** Sets one region's reported usage; false if that region has no such limit. */
async function writeUsage(
  tx: Executor,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
  region: string,
  usage: number,
  nowMs: number,
): Promise<boolean> {
  const changed = await tx.run(
    `UPDATE limits SET usage = ?, usage_at = ?
      WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ? AND region = ?`,
    [usage, nowMs, organization, project, service, resourceType, region],
  );
  return changed === 1;
}

/**
 * Records the usage a region's host service reports for a limit (from its tracker). Not
 * journaled: it is an observation, sent often; the host's own tracker is the record.
 */
export async function reportLimitUsage(
  context: WriteContext,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
  region: string,
  usage: number,
): Promise<LimitRegion> {
  const { tx, nowMs } = context;
  await requireProject(tx, organization, project);
  if (!(await writeUsage(tx, organization, project, service, resourceType, region, usage, nowMs))) {
    throw notFound(`limit ${service}/${resourceType} of project "${project}" in region "${region}"`);
  }
  const limit = await readLimit(tx, organization, project, service, resourceType, nowMs);
  return limit.regions.find((r) => r.region === region)!;
}

/**
 * Copies a tracker's `used` into the usage of the limit it enforces: the limit of `project`
 * (host services know projects by id alone) for `service`/`resourceType` in `region`.
 * Returns how many limits matched (0: none; more than 1: the id is ambiguous, nothing is
 * written) and whether the usage changed.
 */
export async function reportTrackerUsage(
  tx: Executor,
  region: string,
  service: string,
  project: string,
  resourceType: string,
  used: number,
  nowMs: number,
): Promise<{ matched: number; changed: boolean }> {
  const matches = await tx.all<{ organization_id: string; usage: number }>(
    'SELECT organization_id, usage FROM limits WHERE project_id = ? AND service = ? AND resource_type = ? AND region = ?',
    [project, service, resourceType, region],
  );
  if (matches.length !== 1) return { matched: matches.length, changed: false };
  await writeUsage(tx, matches[0]!.organization_id, project, service, resourceType, region, used, nowMs);
  return { matched: 1, changed: matches[0]!.usage !== used };
}

/**
 * The controller's escrow: records the shares of a global bound it set on the regions'
 * trackers as their configured limits, and the usage it read with them.
 */
export async function writeGlobalShares(
  tx: Executor,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
  shares: readonly { region: string; limit: number; used: number }[],
  nowMs: number,
): Promise<void> {
  for (const { region, limit, used } of shares) {
    await tx.run(
      `UPDATE limits SET
          generation = CASE WHEN configured = ? THEN generation ELSE generation + 1 END,
          updated_at = CASE WHEN configured = ? THEN updated_at ELSE ? END,
          configured = ?, usage = ?, usage_at = ?
        WHERE organization_id = ? AND project_id = ? AND service = ? AND resource_type = ? AND region = ?`,
      [limit, limit, nowMs, limit, used, nowMs, organization, project, service, resourceType, region],
    );
  }
}
