/**
 * Regions: where host services run. Each region lists, per service, how the limits controller
 * reaches that service's trackers (the mixin's admin routes and their bearer token); each
 * project has a primary region (whose controller manages its trackers everywhere) and the
 * regions it is enabled in.
 */
import { hostStaleAfterMs } from '../../domain/constants.js';
import { AllotError, invalid, notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';
import type { WriteContext } from '../context.js';
import { appendJournal } from '../journal/journal.js';
import { lockProject, requireProject } from '../catalog/tenants.js';
import { isoOf } from '../time.js';

export interface RegionHost {
  region: string;
  service: string;
  endpoint: string;
  /** ok: reached lately; stale: failing, or not reached for a while; unknown: never tried. */
  status: 'ok' | 'stale' | 'unknown';
  lastOkAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

export interface Region {
  name: string;
  displayName: string;
  hosts: RegionHost[];
  createdAt: string;
  updatedAt: string;
}

export interface ProjectRegions {
  organization: string;
  project: string;
  primary: string | null;
  enabled: string[];
}

interface HostRow {
  region: string;
  service: string;
  endpoint: string;
  token: string;
  last_ok_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
}

/** A host with the token the controller needs (never served over the API). */
export interface HostAccess {
  region: string;
  service: string;
  endpoint: string;
  token: string;
}

export function hostStatusOf(row: Pick<HostRow, 'last_ok_at' | 'last_error_at'>, nowMs: number): RegionHost['status'] {
  if (row.last_ok_at === null && row.last_error_at === null) return 'unknown';
  if (row.last_error_at !== null && (row.last_ok_at === null || row.last_error_at > row.last_ok_at)) return 'stale';
  return nowMs - row.last_ok_at! > hostStaleAfterMs ? 'stale' : 'ok';
}

const hostOf = (row: HostRow, nowMs: number): RegionHost => ({
  region: row.region,
  service: row.service,
  endpoint: row.endpoint,
  status: hostStatusOf(row, nowMs),
  lastOkAt: row.last_ok_at === null ? null : isoOf(row.last_ok_at),
  lastError: row.last_error,
  lastErrorAt: row.last_error_at === null ? null : isoOf(row.last_error_at),
});

export async function upsertRegion(tx: Executor, name: string, displayName: string, nowMs: number) {
  const created = await tx.run(
    `INSERT INTO regions (name, display_name, created_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (name) DO NOTHING`,
    [name, displayName, nowMs, nowMs],
  );
  if (created === 0) {
    await tx.run('UPDATE regions SET display_name = ?, updated_at = ? WHERE name = ?', [displayName, nowMs, name]);
  }
  return { region: await readRegion(tx, name, nowMs), created: created === 1 };
}

export async function readRegion(tx: Executor, name: string, nowMs: number): Promise<Region> {
  const row = await tx.get<{ name: string; display_name: string; created_at: number; updated_at: number }>(
    'SELECT * FROM regions WHERE name = ?',
    [name],
  );
  if (!row) throw notFound(`region "${name}"`);
  const hosts = await tx.all<HostRow>('SELECT * FROM region_hosts WHERE region = ? ORDER BY service', [name]);
  return {
    name: row.name,
    displayName: row.display_name,
    hosts: hosts.map((host) => hostOf(host, nowMs)),
    createdAt: isoOf(row.created_at),
    updatedAt: isoOf(row.updated_at),
  };
}

export async function listRegions(tx: Executor, nowMs: number): Promise<Region[]> {
  const names = await tx.all<{ name: string }>('SELECT name FROM regions ORDER BY name');
  const regions: Region[] = [];
  for (const { name } of names) regions.push(await readRegion(tx, name, nowMs));
  return regions;
}

/** Registers (or re-points) how the controller reaches `service`'s trackers in `region`. */
export async function putRegionHost(
  tx: Executor,
  region: string,
  service: string,
  endpoint: string,
  token: string,
  nowMs: number,
): Promise<RegionHost> {
  await readRegion(tx, region, nowMs);
  await tx.run(
    `INSERT INTO region_hosts (region, service, endpoint, token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (region, service) DO UPDATE SET endpoint = excluded.endpoint, token = excluded.token,
        updated_at = excluded.updated_at`,
    [region, service, endpoint, token, nowMs, nowMs],
  );
  const row = await tx.get<HostRow>('SELECT * FROM region_hosts WHERE region = ? AND service = ?', [region, service]);
  return hostOf(row!, nowMs);
}

export async function deleteRegionHost(tx: Executor, region: string, service: string): Promise<boolean> {
  return (await tx.run('DELETE FROM region_hosts WHERE region = ? AND service = ?', [region, service])) === 1;
}

/** Every host of a region, with its token: for the controller only. */
export function hostsOfRegion(tx: Executor, region: string): Promise<HostAccess[]> {
  return tx.all<HostAccess>('SELECT region, service, endpoint, token FROM region_hosts WHERE region = ? ORDER BY service', [
    region,
  ]);
}

/** Every registered host, with its token: for the controller only. */
export function allHosts(tx: Executor): Promise<HostAccess[]> {
  return tx.all<HostAccess>('SELECT region, service, endpoint, token FROM region_hosts ORDER BY region, service');
}

/** Which of these project ids exist (not deleted) in some organization. */
export async function knownProjects(tx: Executor, projects: readonly string[]): Promise<Set<string>> {
  if (projects.length === 0) return new Set();
  const rows = await tx.all<{ id: string }>(
    `SELECT DISTINCT id FROM projects WHERE deleted_at IS NULL AND id IN (${projects.map(() => '?').join(', ')})`,
    projects,
  );
  return new Set(rows.map((row) => row.id));
}

/**
 * Records how reaching a host went (the controller, after each host in a pass). `usageSync`:
 * the call was the host's own region's controller syncing its usage, which is also recorded
 * apart (a limit's hostStatus: usage another region's controller reads is not refreshed).
 */
export async function recordHostStatus(
  tx: Executor,
  region: string,
  service: string,
  error: string | null,
  nowMs: number,
  usageSync = false,
) {
  const where = ' WHERE region = ? AND service = ?';
  if (error === null) {
    const set = usageSync ? 'last_ok_at = ?, usage_synced_at = ?' : 'last_ok_at = ?';
    await tx.run(`UPDATE region_hosts SET ${set}${where}`, [...(usageSync ? [nowMs, nowMs] : [nowMs]), region, service]);
  } else {
    const set = usageSync ? 'last_error = ?, last_error_at = ?, usage_sync_failed_at = ?' : 'last_error = ?, last_error_at = ?';
    await tx.run(`UPDATE region_hosts SET ${set}${where}`, [error.slice(0, 500), ...(usageSync ? [nowMs, nowMs] : [nowMs]), region, service]);
  }
}

export async function readProjectRegions(tx: Executor, organization: string, project: string): Promise<ProjectRegions> {
  await requireProject(tx, organization, project);
  const row = await tx.get<{ primary_region: string | null }>(
    'SELECT primary_region FROM projects WHERE organization_id = ? AND id = ?',
    [organization, project],
  );
  const enabled = await tx.all<{ region: string }>(
    'SELECT region FROM project_regions WHERE organization_id = ? AND project_id = ? ORDER BY region',
    [organization, project],
  );
  return { organization, project, primary: row?.primary_region ?? null, enabled: enabled.map((r) => r.region) };
}

/** Sets a project's primary region and the regions it is enabled in (the primary among them). */
export async function writeProjectRegions(
  context: WriteContext,
  organization: string,
  project: string,
  primary: string,
  enabled: readonly string[],
): Promise<void> {
  const { tx } = context;
  await lockProject(context, organization, project);
  if (!enabled.includes(primary)) throw invalid('enabled', `must include the primary region "${primary}"`);
  const known = await tx.all<{ name: string }>(
    `SELECT name FROM regions WHERE name IN (${enabled.map(() => '?').join(', ')})`,
    enabled,
  );
  const unknown = enabled.filter((name) => !known.some((row) => row.name === name));
  if (unknown.length > 0) {
    throw new AllotError('invalid-request', `unknown regions: ${unknown.join(', ')}`, {
      errors: [{ field: 'enabled', message: `unknown regions: ${unknown.join(', ')}` }],
    });
  }
  const before = await readProjectRegions(tx, organization, project);
  await tx.run('UPDATE projects SET primary_region = ? WHERE organization_id = ? AND id = ?', [primary, organization, project]);
  await tx.run('DELETE FROM project_regions WHERE organization_id = ? AND project_id = ?', [organization, project]);
  for (const region of enabled) {
    await tx.run('INSERT INTO project_regions (organization_id, project_id, region) VALUES (?, ?, ?)', [
      organization,
      project,
      region,
    ]);
  }
  appendJournal(context, {
    organization,
    project,
    action: 'project-regions.set',
    subject: null,
    changes: { before: { primary: before.primary, enabled: before.enabled }, after: { primary, enabled: [...enabled].sort() } },
    deltas: [],
  });
}

/** What the controller of `region` manages: the limits of the projects whose primary it is. */
export interface ManagedLimit {
  organization: string;
  project: string;
  service: string;
  resourceType: string;
  region: string;
  /**
   * The region's configured limit: what its tracker enforces (a usage report above it shows a
   * gap in the active limit, but never lets the host create more).
   */
  configured: number;
  /** The limit's bound across regions, if it has one (then the controller sets the shares). */
  global: number | null;
}

export async function limitsManagedBy(tx: Executor, region: string): Promise<{ limits: ManagedLimit[]; projects: { organization: string; project: string; enabled: string[] }[] }> {
  const projects = await tx.all<{ organization_id: string; id: string }>(
    'SELECT organization_id, id FROM projects WHERE primary_region = ? AND deleted_at IS NULL ORDER BY organization_id, id',
    [region],
  );
  const enabledRows = await tx.all<{ organization_id: string; project_id: string; region: string }>(
    `SELECT r.organization_id, r.project_id, r.region FROM project_regions r
      JOIN projects p ON p.organization_id = r.organization_id AND p.id = r.project_id
      WHERE p.primary_region = ? AND p.deleted_at IS NULL`,
    [region],
  );
  const limits = await tx.all<{ organization_id: string; project_id: string; service: string; resource_type: string; region: string; configured: number; global_limit: number | null }>(
    `SELECT l.organization_id, l.project_id, l.service, l.resource_type, l.region, l.configured, g.global_limit
      FROM limits l
      JOIN projects p ON p.organization_id = l.organization_id AND p.id = l.project_id
      LEFT JOIN global_limits g ON g.organization_id = l.organization_id AND g.project_id = l.project_id
        AND g.service = l.service AND g.resource_type = l.resource_type
      WHERE p.primary_region = ? AND p.deleted_at IS NULL
      ORDER BY l.organization_id, l.project_id, l.service, l.resource_type, l.region`,
    [region],
  );
  return {
    projects: projects.map((p) => ({
      organization: p.organization_id,
      project: p.id,
      enabled: enabledRows.filter((r) => r.organization_id === p.organization_id && r.project_id === p.id).map((r) => r.region),
    })),
    limits: limits.map((l) => ({
      organization: l.organization_id,
      project: l.project_id,
      service: l.service,
      resourceType: l.resource_type,
      region: l.region,
      configured: Number(l.configured),
      global: l.global_limit === null ? null : Number(l.global_limit),
    })),
  };
}
