/**
 * The values in force of one kind, read from the rows as they are (no lock): an organization's
 * own quota and the kind's default, or a project's cap, guarantee and generation; and the
 * usage (committed + reserved + held). For what reads them outside a decision: a quota
 * request's current value, a webhook threshold's starting point.
 */
import type { Executor } from '../../store/store.js';

export interface KindValues {
  /** undefined: no such kind. */
  kindDefault: number | null | undefined;
  /** The organization's own quota (null: none, the default applies). */
  quota: number | null;
  used: number;
}

export interface ProjectValues {
  cap: number | null;
  guaranteed: number;
  used: number;
  /** The project's quota set generation (If-Match of a change). */
  generation: number;
}

const numberOrNull = (value: number | string | null | undefined) => (value == null ? null : Number(value));

export async function organizationValues(tx: Executor, organization: string, kind: string): Promise<KindValues> {
  const found = await tx.get<{ default_quota: number | string | null }>('SELECT default_quota FROM resource_kinds WHERE name = ?', [kind]);
  const own = await tx.get<{ quota: number | string | null; used: number | string }>(
    'SELECT quota, committed + reserved + held AS used FROM quota_counters WHERE organization_id = ? AND kind = ?',
    [organization, kind],
  );
  return { kindDefault: found === undefined ? undefined : numberOrNull(found.default_quota), quota: numberOrNull(own?.quota), used: Number(own?.used ?? 0) };
}

/** A live project's values of a kind; undefined when there is no such project (or it was deleted). */
export async function projectValues(tx: Executor, organization: string, project: string, kind: string): Promise<ProjectValues | undefined> {
  const found = await tx.get<{ quota_generation: number | string }>(
    'SELECT quota_generation FROM projects WHERE organization_id = ? AND id = ? AND deleted_at IS NULL',
    [organization, project],
  );
  if (!found) return undefined;
  const own = await tx.get<{ cap: number | string | null; guaranteed: number | string; used: number | string }>(
    `SELECT cap, guaranteed, committed + reserved + held AS used FROM project_counters
      WHERE organization_id = ? AND project_id = ? AND kind = ?`,
    [organization, project, kind],
  );
  return { cap: numberOrNull(own?.cap), guaranteed: Number(own?.guaranteed ?? 0), used: Number(own?.used ?? 0), generation: Number(found.quota_generation) };
}
