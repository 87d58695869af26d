/**
 * What a group writes: every row of the working set that differs from the copy loaded, as sets
 * of rows (see `Executor.write`) in two batches — first what frees (records ended or
 * moved to another resource, old lines, removed counters), then what takes (new records and
 * lines, moved records' resources, counters, journal, idempotency keys) — so a resource freed
 * and taken in one group, or two records swapping resources, never trips the unique index of
 * live resources halfway. On PostgreSQL each batch is one statement; on SQLite each update or
 * delete is one prepared statement per row and inserts go up to 32 rows a statement, the
 * cheapest ways in-process.
 */
import { idempotencyRetentionMs } from '../../domain/constants.js';
import type { Executor, JsonColumn, RowsWrite } from '../../store/store.js';
import type { AllocationRow } from '../records.js';
import type { WorkingSet } from './working-set.js';

/** Another process stored a response under one of the group's idempotency keys first. */
export class KeyRaced extends Error {
  override name = 'KeyRaced';
}

const text = (name: string): JsonColumn => ({ name, type: 'text' });
const bigint = (name: string): JsonColumn => ({ name, type: 'bigint' });

const recordColumns: JsonColumn[] = [
  text('organization_id'),
  text('project_id'),
  text('resource_kind'),
  text('resource_id'),
  text('state'),
  bigint('expires_at'),
  text('resolution'),
  bigint('resolved_at'),
  bigint('generation'),
  text('created_by'),
  text('updated_by'),
  bigint('created_at'),
  bigint('updated_at'),
  bigint('deleted_at'),
];

type Row = Readonly<Record<string, string | number | null>>;

const update = (table: string, keys: readonly string[], columns: readonly JsonColumn[], rows: readonly Row[]): RowsWrite => ({
  op: 'update',
  table,
  keys,
  columns,
  rows,
});
const insert = (table: string, columns: readonly JsonColumn[], rows: readonly Row[], conflict?: string): RowsWrite => ({
  op: 'insert',
  table,
  keys: [],
  columns,
  rows,
  ...(conflict ? { conflict } : {}),
});
const remove = (table: string, keys: readonly string[], rows: readonly Row[]): RowsWrite => ({ op: 'delete', table, keys, columns: [], rows });

const sameRow = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);

export async function flush(tx: Executor, ws: WorkingSet): Promise<void> {
  const now = ws.nowMs;
  // Records: new ones, changed ones, and those whose referenced resource moved (written in two
  // steps: a placeholder no live row can have, then the new resource).
  const inserted: AllocationRow[] = [];
  const changed: AllocationRow[] = [];
  const moved: AllocationRow[] = [];
  const oldLines: { allocation_id: string; organization_id: string }[] = [];
  const newLines: { allocation_id: string; organization_id: string; kind: string; committed: number; reserved: number }[] = [];
  const metadata: { allocation_id: string; organization_id: string; name: string; description: string | null; tags: string | null }[] = [];
  for (const [id, record] of ws.records) {
    const before = ws.loaded.records.get(id);
    const linesChanged = !before || !sameRow(before.lines, record.lines);
    if (!before) inserted.push(record.row);
    else if (!sameRow(before.row, record.row)) {
      const resourceMoved = before.row.resource_kind !== record.row.resource_kind || before.row.resource_id !== record.row.resource_id;
      if (resourceMoved) {
        moved.push(record.row);
        changed.push({ ...record.row, resource_kind: '', resource_id: id });
      } else changed.push(record.row);
    }
    if (linesChanged) {
      if (before) oldLines.push({ allocation_id: id, organization_id: record.row.organization_id });
      for (const line of record.lines) newLines.push({ allocation_id: id, organization_id: record.row.organization_id, ...line });
    }
    if (record.metadata && (!before || !sameRow(before.metadata ?? {}, record.metadata))) {
      metadata.push({ allocation_id: id, organization_id: record.row.organization_id, ...record.metadata });
    }
  }

  const projectCounters = [...ws.projectCounters].filter(([key, row]) => !sameRow(ws.loaded.projectCounters.get(key)!, row));
  const removedCounters = projectCounters.filter(([, row]) => row.removed).map(([, row]) => row);
  const changedCounters = projectCounters.filter(([, row]) => !row.removed).map(([, row]) => row);
  const counters = [...ws.counters].filter(([key, row]) => !sameRow(ws.loaded.counters.get(key)!, row)).map(([, row]) => row);
  const organizations = [...ws.organizations].filter(([key, row]) => !sameRow(ws.loaded.organizations.get(key)!, row)).map(([, row]) => row);
  const projects = [...ws.projects].filter(([key, row]) => !sameRow(ws.loaded.projects.get(key)!, row)).map(([, row]) => row);
  // In key order, as every group takes them: two groups inserting the same new keys wait in one order.
  const keys = [...ws.keys]
    .filter(([key, row]) => row !== null && !sameRow(ws.loaded.keys.get(key) ?? {}, row))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, row]) => row!);
  const deletedProjects = ws.deletedProjects.map(({ organization, id }) => ({ organization_id: organization, project_id: id }));

  const frees = [
    update('allocations', ['id', 'organization_id'], recordColumns.filter(({ name }) => name !== 'organization_id'), changed as unknown as Row[]),
    remove('allocation_lines', ['allocation_id', 'organization_id'], oldLines),
    remove(
      'project_counters',
      ['organization_id', 'project_id', 'kind'],
      removedCounters.map(({ organization, project, kind }) => ({ organization_id: organization, project_id: project, kind })),
    ),
  ];
  if (frees.some((write) => write.rows.length > 0)) await tx.write(frees);

  const keysWrite = insert(
    'idempotency_keys',
    [
      ...['principal', 'idempotency_key', 'request_hash', 'claim_token', 'state', 'headers', 'body'].map(text),
      ...['status', 'claimed_at', 'created_at'].map(bigint),
    ],
    keys.map((key) => ({
      principal: key.principal,
      idempotency_key: key.key,
      request_hash: key.requestHash,
      claim_token: 'group',
      state: 'done',
      status: key.response!.status,
      headers: JSON.stringify(key.response!.headers),
      body: key.response!.body === undefined ? null : JSON.stringify(key.response!.body),
      claimed_at: now,
      created_at: now,
    })),
    // A key is taken over only where the stored one is past its retention; a key another
    // process stored meanwhile conflicts, is not updated, and the group runs again.
    `ON CONFLICT (principal, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash,
      claim_token = excluded.claim_token, state = excluded.state, status = excluded.status,
      headers = excluded.headers, body = excluded.body, claimed_at = excluded.claimed_at,
      created_at = excluded.created_at
      WHERE idempotency_keys.created_at <= excluded.created_at - ${idempotencyRetentionMs}`,
  );
  const takes: RowsWrite[] = [
    update('allocations', ['id', 'organization_id'], [text('resource_kind'), text('resource_id')], moved as unknown as Row[]),
    insert('allocations', [text('id'), ...recordColumns], inserted as unknown as Row[]),
    insert('allocation_lines', [text('allocation_id'), text('organization_id'), text('kind'), bigint('committed'), bigint('reserved')], newLines),
    insert(
      'compat_allocation_metadata',
      [text('allocation_id'), text('organization_id'), text('name'), text('description'), text('tags')],
      metadata,
      'ON CONFLICT (allocation_id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name, description = excluded.description, tags = excluded.tags',
    ),
    update(
      'project_counters',
      ['organization_id', 'project_id', 'kind'],
      ['cap', 'guaranteed', 'committed', 'reserved', 'held', 'updated_at'].map(bigint).concat(text('updated_by')),
      changedCounters.map((row) => ({
        organization_id: row.organization,
        project_id: row.project,
        kind: row.kind,
        cap: row.cap,
        guaranteed: row.guaranteed,
        committed: row.committed,
        reserved: row.reserved,
        held: row.held,
        updated_at: now,
        updated_by: row.updatedBy,
      })),
    ),
    update(
      'quota_counters',
      ['organization_id', 'kind'],
      ['quota', 'quota_generation', 'committed', 'reserved', 'held', 'guaranteed', 'shortfall', 'updated_at'].map(bigint).concat(text('updated_by')),
      counters.map((row) => ({
        organization_id: row.organization,
        kind: row.kind,
        quota: row.quota,
        quota_generation: row.quotaGeneration,
        committed: row.committed,
        reserved: row.reserved,
        held: row.held,
        guaranteed: row.guaranteed,
        shortfall: row.shortfall,
        updated_at: now,
        updated_by: row.updatedBy,
      })),
    ),
    update(
      'projects',
      ['organization_id', 'id'],
      [bigint('quota_generation'), bigint('deleted_at'), bigint('updated_at')],
      projects.map((row) => ({
        organization_id: row.organization,
        id: row.id,
        quota_generation: row.quotaGeneration,
        deleted_at: row.deletedAt,
        updated_at: now,
      })),
    ),
    update(
      'organizations',
      ['id'],
      [bigint('revision'), bigint('quota_generation')],
      organizations.map((row) => ({ id: row.id, revision: row.revision, quota_generation: row.quotaGeneration })),
    ),
    insert(
      'journal',
      [bigint('revision'), bigint('at'), ...['organization_id', 'project_id', 'principal', 'action', 'subject_id', 'changes', 'deltas'].map(text)],
      ws.journal.map((entry) => ({
        organization_id: entry.organization,
        revision: entry.revision,
        project_id: entry.project,
        at: entry.at,
        principal: entry.principal,
        action: entry.action,
        subject_id: entry.subject,
        changes: entry.changes,
        deltas: entry.deltas,
      })),
    ),
    keysWrite,
    // A deleted project's limits and regions go with it.
    remove('limits', ['organization_id', 'project_id'], deletedProjects),
    remove('project_regions', ['organization_id', 'project_id'], deletedProjects),
  ];
  const counts = await tx.write(takes);
  if (counts[takes.indexOf(keysWrite)] !== keys.length) throw new KeyRaced('an idempotency key was stored by another process first');
  // …and its primary region and its project-member tokens (rare: plain statements).
  for (const { organization_id, project_id } of deletedProjects) {
    await tx.run('UPDATE projects SET primary_region = NULL WHERE organization_id = ? AND id = ?', [organization_id, project_id]);
    await tx.run('UPDATE tokens SET revoked_at = ? WHERE organization_id = ? AND project_id = ? AND revoked_at IS NULL', [
      now,
      organization_id,
      project_id,
    ]);
  }
}
