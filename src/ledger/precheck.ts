/**
 * The reads a create needs before it decides, in one round trip: does the project exist, are
 * the kinds known, does the referenced resource already have a live
 * allocation or pending hold (an expired hold does not count: the caller resolves it before it
 * writes), and are there expired holds to resolve first. Answers in the order a caller
 * would want them reported: unknown project (404), unknown kind (400), duplicate (409).
 * The project's row is key-share locked, so a deletion of the project waits for this decision
 * (and a decision after the deletion finds the project gone).
 */
import { notFound } from '../domain/errors.js';
import { unknownKinds } from './kinds.js';
import type { Dialect, Executor } from '../store/store.js';
import { duplicateAllocation } from './records.js';
import { requireOrganization } from './tenants.js';
import type { ResourceRef } from './types.js';

interface PrecheckRow {
  project_found: number | null;
  existing_id: string | null;
  hold_expired: number | null;
  name: string | null;
}

export interface Precheck {
  /** Some pending hold of the organization has expired and must be resolved first. */
  holdExpired: boolean;
}

export async function precheckCreate(
  { tx, dialect }: { tx: Executor; dialect: Dialect },
  organization: string,
  project: string,
  kinds: readonly string[],
  resource: ResourceRef,
  nowMs: number,
): Promise<Precheck> {
  const rows = await tx.all<PrecheckRow>(
    `SELECT
        (SELECT 1 FROM projects WHERE organization_id = ? AND id = ? AND deleted_at IS NULL${dialect.keyShareRowsSuffix})
          AS project_found,
        (SELECT id FROM allocations WHERE organization_id = ? AND resource_kind = ?
          AND resource_id = ? AND deleted_at IS NULL
          AND NOT (state = 'held' AND expires_at <= ?)) AS existing_id,
        (SELECT 1 FROM allocations WHERE organization_id = ? AND state = 'held'
          AND deleted_at IS NULL AND expires_at <= ? LIMIT 1) AS hold_expired,
        k.name
      FROM (SELECT 1 AS one) base
      LEFT JOIN resource_kinds k ON k.name IN (${kinds.map(() => '?').join(', ')})`,
    [organization, project, organization, resource.kind, resource.id, nowMs, organization, nowMs, ...kinds],
  );
  const first = rows[0]!;
  if (first.project_found === null) {
    await requireOrganization(tx, organization);
    throw notFound(`project "${project}" in organization "${organization}"`);
  }
  const known = new Set(rows.map((row) => row.name));
  const unknown = kinds.filter((kind) => !known.has(kind));
  if (unknown.length > 0) throw unknownKinds('allocations', unknown);
  if (first.existing_id !== null) throw duplicateAllocation(resource, first.existing_id);
  return { holdExpired: first.hold_expired !== null };
}
