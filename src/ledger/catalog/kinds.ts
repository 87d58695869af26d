import { AllotError, invalid, notFound } from '../../domain/errors.js';
import type { Dialect, Executor } from '../../store/store.js';
import { isoOf } from '../time.js';
import type { KindFormat, ResourceKind } from '../types.js';

interface KindRow {
  name: string;
  display_name: string;
  description: string;
  default_quota: number | null;
  format: KindFormat;
  created_at: number;
  updated_at: number;
}

const kindOf = (row: KindRow): ResourceKind => ({
  name: row.name,
  displayName: row.display_name,
  description: row.description,
  default: row.default_quota,
  format: row.format,
  createdAt: isoOf(row.created_at),
  updatedAt: isoOf(row.updated_at),
});

export async function upsertKind(
  tx: Executor,
  dialect: Dialect,
  kind: Omit<ResourceKind, 'createdAt' | 'updatedAt'>,
  nowMs: number,
): Promise<{ kind: ResourceKind; created: boolean }> {
  const values = [kind.displayName, kind.description, kind.default, kind.format];
  // Insert first: ON CONFLICT DO NOTHING waits for a concurrent creator instead of failing.
  const created = await tx.run(
    `INSERT INTO resource_kinds
      (display_name, description, default_quota, format, name, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
    [...values, kind.name, nowMs, nowMs],
  );
  if (created === 0) {
    await tx.run(
      `UPDATE resource_kinds SET display_name = ?, description = ?, default_quota = ?, format = ?,
        updated_at = ? WHERE name = ?`,
      [...values, nowMs, kind.name],
    );
    // Every organization's counter of this kind carries the default; updating them takes their
    // row locks, so the change waits for decisions in flight and the next ones see it. They
    // are locked first in organization order, the order a group of decisions takes them in
    // (an UPDATE alone would lock them in the table's order, and could deadlock with a group).
    await tx.all(`SELECT organization_id FROM quota_counters WHERE kind = ? ORDER BY organization_id${dialect.lockRowsSuffix}`, [kind.name]);
    await tx.run('UPDATE quota_counters SET kind_default = ? WHERE kind = ?', [kind.default, kind.name]);
    // An organization living on the default keeps its guarantees within it: a default below
    // one's guarantees is refused, like a quota cut below them (lower the guarantees first).
    if (kind.default !== null) {
      const over = await tx.all<{ organization_id: string; guaranteed: number }>(
        `SELECT organization_id, guaranteed FROM quota_counters
          WHERE kind = ? AND quota IS NULL AND guaranteed > ? ORDER BY organization_id LIMIT 10`,
        [kind.name, kind.default],
      );
      if (over.length > 0) {
        const overGuaranteed = over.map((row) => ({ kind: kind.name, organization: row.organization_id, guaranteed: row.guaranteed, quantity: kind.default! }));
        const names = over.map((row) => `${row.organization_id} (${row.guaranteed})`).join(', ');
        throw new AllotError('guarantees-exceed-quota', `default ${kind.default} is below the guarantees of: ${names}`, {
          overGuaranteed,
        });
      }
    }
  }
  const row = await tx.get<KindRow>('SELECT * FROM resource_kinds WHERE name = ?', [kind.name]);
  return { kind: kindOf(row!), created: created === 1 };
}

export async function requireKind(tx: Executor, name: string): Promise<ResourceKind> {
  const row = await tx.get<KindRow>('SELECT * FROM resource_kinds WHERE name = ?', [name]);
  if (!row) throw notFound(`resource kind "${name}"`);
  return kindOf(row);
}

export async function listKinds(tx: Executor): Promise<ResourceKind[]> {
  const rows = await tx.all<KindRow>('SELECT * FROM resource_kinds ORDER BY name');
  return rows.map(kindOf);
}

/**
 * Refuses unknown kinds: the caller's mistake (400), reported by the field it came from.
 * (Their defaults are not read here: the counter rows carry them, under their own locks.)
 */
export async function requireKinds(tx: Executor, names: readonly string[], field: string): Promise<void> {
  if (names.length === 0) return;
  const rows = await tx.all<{ name: string }>(
    `SELECT name FROM resource_kinds WHERE name IN (${names.map(() => '?').join(', ')})`,
    names,
  );
  const known = new Set(rows.map((row) => row.name));
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) throw unknownKinds(field, unknown);
}

export function unknownKinds(field: string, unknown: readonly string[]) {
  const names = unknown.map((name) => `"${name}"`).join(', ');
  return invalid(field, `unknown resource kind${unknown.length > 1 ? 's' : ''} ${names}`);
}
