/**
 * Creating counter rows: `quota_counters` (one per organization and kind: the quota, the
 * committed, reserved and held totals, the sum of the projects' guarantees and their
 * shortfall) and `project_counters` (one per project and kind: its cap, guarantee and usage)
 * exist from the first time an organization or a project uses a kind. How they move is
 * decided in engine/usage.ts.
 */
import type { Executor } from '../store/store.js';
import type { WriteContext } from './context.js';

/**
 * Creates the counter row of a kind the organization has never used, if it is missing, with
 * the kind's default. The kind's row is share-locked while it is read, so a concurrent change
 * of the default either comes first (and is copied here) or waits and then updates this row.
 */
export async function ensureCounter(
  { tx, dialect }: Pick<WriteContext, 'tx' | 'dialect'>,
  organization: string,
  kind: string,
  nowMs: number,
): Promise<boolean> {
  const inserted = await tx.run(
    `INSERT INTO quota_counters
        (organization_id, kind, quota, kind_default, committed, reserved, held, updated_at)
      SELECT ?, name, NULL, default_quota, 0, 0, 0, ? FROM resource_kinds
        WHERE name = ?${dialect.shareRowsSuffix}
      ON CONFLICT (organization_id, kind) DO NOTHING`,
    [organization, nowMs, kind],
  );
  return inserted === 1;
}

/** Creates a project's counter row of a kind, with no cap and no guarantee, if it is missing. */
export async function ensureProjectCounter(
  tx: Executor,
  organization: string,
  project: string,
  kind: string,
  nowMs: number,
): Promise<boolean> {
  const inserted = await tx.run(
    `INSERT INTO project_counters (organization_id, project_id, kind, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (organization_id, project_id, kind) DO NOTHING`,
    [organization, project, kind, nowMs],
  );
  return inserted === 1;
}
