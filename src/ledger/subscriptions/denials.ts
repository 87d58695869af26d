/**
 * Refused decisions for the denial digest: counted per minute, kind and scope. A refusal
 * writes nothing in its own transaction (it changes nothing), so the webhooks' recorder counts
 * them in memory and adds them here each second; a crash loses at most that second's counts.
 */
import type { Executor } from '../../store/store.js';

export interface DenialCount {
  organization: string;
  minute: number;
  kind: string;
  /** organization, project or guarantees: the level whose limit refused. */
  scope: string;
  /** '' unless scope is project. */
  project: string;
  count: number;
}

/** How long counts are kept: past the longest digest interval (a day). */
export const denialsKeptMs = 2 * 86_400_000;

export async function addDenials(tx: Executor, counts: readonly DenialCount[]): Promise<void> {
  for (const c of counts) {
    await tx.run(
      `INSERT INTO denials (organization_id, minute, kind, scope, project_id, count) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (organization_id, minute, kind, scope, project_id) DO UPDATE SET count = denials.count + excluded.count`,
      [c.organization, c.minute, c.kind, c.scope, c.project, c.count],
    );
  }
}

/** Refusals of an organization in minutes [fromMs, toMs), per kind and scope. */
export async function readDenials(tx: Executor, organization: string, fromMs: number, toMs: number) {
  const rows = await tx.all<{ kind: string; scope: string; project_id: string; count: number | string }>(
    `SELECT kind, scope, project_id, SUM(count) AS count FROM denials
      WHERE organization_id = ? AND minute >= ? AND minute < ? GROUP BY kind, scope, project_id ORDER BY kind, scope, project_id`,
    [organization, fromMs, toMs],
  );
  return rows.map((row) => ({ kind: row.kind, scope: row.scope, project: row.project_id === '' ? null : row.project_id, count: Number(row.count) }));
}

export async function forgetDenials(tx: Executor, beforeMs: number): Promise<number> {
  return tx.run('DELETE FROM denials WHERE minute < ?', [beforeMs]);
}
