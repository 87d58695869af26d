import { notFound } from '../../domain/errors.js';
import type { Dialect, Executor } from '../../store/store.js';
import { decodeCursor, pageOf } from '../pages.js';
import { isoOf } from '../time.js';
import type { Organization, Page, Project } from '../types.js';

interface OrganizationRow {
  id: string;
  display_name: string;
  created_at: number;
  updated_at: number;
}

interface ProjectRow extends OrganizationRow {
  organization_id: string;
}

const organizationOf = (row: OrganizationRow): Organization => ({
  id: row.id,
  displayName: row.display_name,
  createdAt: isoOf(row.created_at),
  updatedAt: isoOf(row.updated_at),
});

const projectOf = (row: ProjectRow): Project => ({
  organization: row.organization_id,
  ...organizationOf(row),
});

export async function upsertOrganization(
  tx: Executor,
  id: string,
  displayName: string,
  nowMs: number,
): Promise<{ organization: Organization; created: boolean }> {
  // Insert first: ON CONFLICT DO NOTHING waits for a concurrent creator instead of failing.
  const created = await tx.run(
    `INSERT INTO organizations (id, display_name, created_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (id) DO NOTHING`,
    [id, displayName, nowMs, nowMs],
  );
  if (created === 0) {
    await tx.run('UPDATE organizations SET display_name = ?, updated_at = ? WHERE id = ?', [
      displayName,
      nowMs,
      id,
    ]);
  }
  return { organization: await requireOrganization(tx, id), created: created === 1 };
}

export async function requireOrganization(tx: Executor, id: string): Promise<Organization> {
  const row = await tx.get<OrganizationRow>('SELECT * FROM organizations WHERE id = ?', [id]);
  if (!row) throw notFound(`organization "${id}"`);
  return organizationOf(row);
}

/**
 * A page of organizations by id. The prefix is compared with substr, not as a range: a range's
 * bounds depend on the column's collation, and PostgreSQL databases in en_US order '-' and
 * digits differently from bytes.
 */
export async function listOrganizations(
  tx: Executor,
  limit: number,
  cursor: string | undefined,
  prefix = '',
): Promise<Page<Organization>> {
  const after = decodeCursor(cursor);
  const rows = await tx.all<OrganizationRow>(
    `SELECT * FROM organizations WHERE id > ? AND substr(id, 1, ?) = ? ORDER BY id LIMIT ?`,
    [after ?? '', prefix.length, prefix, limit + 1],
  );
  return pageOf(rows.map(organizationOf), limit, (organization) => organization.id);
}

export async function upsertProject(
  tx: Executor,
  organization: string,
  id: string,
  displayName: string,
  nowMs: number,
): Promise<{ project: Project; created: boolean }> {
  await requireOrganization(tx, organization);
  const created = await tx.run(
    `INSERT INTO projects (organization_id, id, display_name, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT (organization_id, id) DO NOTHING`,
    [organization, id, displayName, nowMs, nowMs],
  );
  let revived = false;
  if (created === 0) {
    // A deleted project's id may be used again: it comes back as a new, empty project.
    revived =
      (await tx.run(
        `UPDATE projects SET display_name = ?, created_at = ?, updated_at = ?, deleted_at = NULL,
          quota_generation = quota_generation + 1
          WHERE organization_id = ? AND id = ? AND deleted_at IS NOT NULL`,
        [displayName, nowMs, nowMs, organization, id],
      )) === 1;
    if (!revived) {
      await tx.run(
        'UPDATE projects SET display_name = ?, updated_at = ? WHERE organization_id = ? AND id = ?',
        [displayName, nowMs, organization, id],
      );
    }
  }
  return { project: await requireProject(tx, organization, id), created: created === 1 || revived };
}

/** A project is addressed through its organization; a missing one of either is a 404. */
export async function requireProject(
  tx: Executor,
  organization: string,
  id: string,
  lock = '',
): Promise<Project> {
  const row = await tx.get<ProjectRow>(
    `SELECT * FROM projects WHERE organization_id = ? AND id = ? AND deleted_at IS NULL${lock}`,
    [organization, id],
  );
  if (!row) {
    await requireOrganization(tx, organization);
    throw notFound(`project "${id}" in organization "${organization}"`);
  }
  return projectOf(row);
}

/**
 * `requireProject` for a decision: key-share locks the project's row (as a foreign-key check
 * would), so the project's deletion waits for the decision, and a decision after a deletion
 * finds the project gone.
 */
export function lockProject(
  { tx, dialect }: { tx: Executor; dialect: Dialect },
  organization: string,
  id: string,
): Promise<Project> {
  return requireProject(tx, organization, id, dialect.keyShareRowsSuffix);
}

export async function listProjects(
  tx: Executor,
  organization: string,
  limit: number,
  cursor: string | undefined,
): Promise<Page<Project>> {
  await requireOrganization(tx, organization);
  const after = decodeCursor(cursor);
  const rows = await tx.all<ProjectRow>(
    `SELECT * FROM projects WHERE organization_id = ? AND deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?`,
    [organization, after ?? '', limit + 1],
  );
  return pageOf(rows.map(projectOf), limit, (project) => project.id);
}
