/**
 * Quota requests: rows and their reads and writes. A request is pending until approved,
 * denied, cancelled or expired, and leaves pending once: every change of state is an UPDATE
 * guarded by `state = 'pending'`, which two racing transactions cannot both pass (the second
 * waits for the first's row lock, then finds the row no longer pending).
 */
import type { Static } from '@sinclair/typebox';
import { AllotError, notFound } from '../../domain/errors.js';
import type * as wire from '../../schemas/index.js';
import type { Executor } from '../../store/store.js';
import { decodeCursor, pageOf } from '../pages.js';
import { isoOf } from '../time.js';

export type QuotaRequest = Static<typeof wire.QuotaRequest>;
export type QuotaRequestInput = Static<typeof wire.QuotaRequestBody>;
export type RequestState = QuotaRequest['state'];
export type RequestField = QuotaRequest['field'];

export interface RequestRow {
  id: string;
  organization_id: string;
  project_id: string | null;
  field: RequestField;
  kind: string;
  preferred: number | string;
  current_value: number | string | null;
  justification: string;
  contact: string;
  state: RequestState;
  granted: number | string | null;
  reason: string | null;
  requested_by: string;
  requested_at: number | string;
  expires_at: number | string;
  decided_by: string | null;
  decided_at: number | string | null;
}

const numberOrNull = (value: number | string | null) => (value === null ? null : Number(value));

export function requestOf(row: RequestRow): QuotaRequest {
  return {
    id: row.id,
    organization: row.organization_id,
    scope: row.project_id === null ? 'organization' : 'project',
    project: row.project_id,
    field: row.field,
    kind: row.kind,
    preferred: Number(row.preferred),
    current: numberOrNull(row.current_value),
    justification: row.justification,
    contact: row.contact,
    state: row.state,
    granted: numberOrNull(row.granted),
    reason: row.reason,
    requestedBy: row.requested_by,
    requestedAt: isoOf(Number(row.requested_at)),
    expiresAt: isoOf(Number(row.expires_at)),
    decidedBy: row.decided_by,
    decidedAt: row.decided_at === null ? null : isoOf(Number(row.decided_at)),
  };
}

/** What allows one open request per organization, scope and kind. */
export const openKeyOf = (organization: string, project: string | null, kind: string) =>
  JSON.stringify([organization, project ?? '', kind]);

export async function insertRequest(tx: Executor, row: RequestRow, open: boolean): Promise<void> {
  await tx.run(
    `INSERT INTO quota_requests (id, organization_id, project_id, field, kind, preferred, current_value, justification,
      contact, state, granted, reason, open_key, requested_by, requested_at, expires_at, decided_by, decided_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      row.id, row.organization_id, row.project_id, row.field, row.kind, row.preferred, row.current_value, row.justification,
      row.contact, row.state, row.granted, row.reason, open ? openKeyOf(row.organization_id, row.project_id, row.kind) : null,
      row.requested_by, row.requested_at, row.expires_at, row.decided_by, row.decided_at,
    ],
  );
}

/** The open request of a key, if any. */
export async function openRequest(tx: Executor, organization: string, project: string | null, kind: string): Promise<RequestRow | undefined> {
  return tx.get<RequestRow>('SELECT * FROM quota_requests WHERE open_key = ?', [openKeyOf(organization, project, kind)]);
}

export async function readRequestRow(tx: Executor, organization: string, id: string): Promise<RequestRow> {
  const row = await tx.get<RequestRow>('SELECT * FROM quota_requests WHERE id = ? AND organization_id = ?', [id, organization]);
  if (!row) throw notFound(`quota request "${id}"`);
  return row;
}

/**
 * Moves a pending request to `state`: false if it was no longer pending (another transaction
 * took it first; this one then waited for it).
 */
export async function leavePending(
  tx: Executor,
  id: string,
  change: { state: Exclude<RequestState, 'pending'>; granted?: number | null; reason?: string | null; by: string; atMs: number },
): Promise<boolean> {
  const changed = await tx.run(
    `UPDATE quota_requests SET state = ?, granted = ?, reason = ?, decided_by = ?, decided_at = ?, open_key = NULL
      WHERE id = ? AND state = 'pending'`,
    [change.state, change.granted ?? null, change.reason ?? null, change.by, change.atMs, id],
  );
  return changed === 1;
}

/** The refusal of a second request while `open` is pending for the same key, naming it. */
export const stillOpen = (open: Pick<RequestRow, 'id' | 'kind'>) =>
  new AllotError('quota-request-open', `quota request "${open.id}" for ${open.kind} here is still pending`, { openRequest: open.id });

/** The refusal for a request that has left pending, naming how. */
export const resolved = (row: Pick<RequestRow, 'id' | 'state'>) =>
  new AllotError('quota-request-resolved', `quota request "${row.id}" is already ${row.state}`, { state: row.state });

export async function listRequests(
  tx: Executor,
  organization: string,
  query: { state?: RequestState; project?: string; limit: number; cursor?: string },
) {
  const after = decodeCursor(query.cursor) ?? '';
  const rows = await tx.all<RequestRow>(
    `SELECT * FROM quota_requests WHERE organization_id = ? AND id > ?
      ${query.state ? 'AND state = ?' : ''} ${query.project ? 'AND project_id = ?' : ''} ORDER BY id LIMIT ?`,
    [organization, after, ...(query.state ? [query.state] : []), ...(query.project ? [query.project] : []), query.limit + 1],
  );
  return pageOf(rows.map(requestOf), query.limit, (request) => request.id);
}

/** Pending requests past their time, oldest first (a bounded batch for the sweeper). */
export async function duePending(tx: Executor, nowMs: number, limit: number): Promise<RequestRow[]> {
  return tx.all<RequestRow>(`SELECT * FROM quota_requests WHERE state = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?`, [nowMs, limit]);
}

/** Approvals by policy of a kind in an organization since `sinceMs` (the policy's per-period count). */
export async function approvedByPolicy(tx: Executor, organization: string, kind: string, sinceMs: number): Promise<number> {
  const row = await tx.get<{ n: number | string }>(
    `SELECT COUNT(*) AS n FROM quota_requests WHERE organization_id = ? AND kind = ? AND decided_by = 'policy' AND decided_at > ?`,
    [organization, kind, sinceMs],
  );
  return Number(row?.n ?? 0);
}
