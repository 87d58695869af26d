/**
 * What a group of decisions reads before it decides, and the locks it takes, in the one global
 * order every transaction that changes usage follows:
 *
 *   projects → records (allocations and holds, by id) → idempotency keys
 *     → project counters → organization counters → organizations
 *
 * each set in one statement sorted by its key. Because a group locks everything it will change
 * before it changes anything, it never waits for a row while holding a later one: no deadlock,
 * and the hot counter rows stay locked only from their statement to the commit. Every set of
 * keys is passed as one JSON parameter, so the statement count of a group does not grow with
 * its size (a constant number of round trips on PostgreSQL).
 */
import { assert } from '../../domain/assert.js';
import { expiredHoldsPerDecisionMax } from '../../domain/constants.js';
import type { Line } from '../../domain/decision.js';
import type { Dialect, Executor, JsonColumn } from '../../store/store.js';
import type { StoredResponse } from '../idempotency.js';
import type { AllocationRow } from '../records.js';
import type { KindFormat } from '../types.js';
import type { Plan, ProjectLock } from './operations.js';
import {
  counterKey,
  idempotencyKey,
  projectCounterKey,
  projectKey,
  resourceKey,
  WorkingSet,
  type RecordState,
} from './working-set.js';

const text = (name: string): JsonColumn => ({ name, type: 'text' });

/** The rows of a JSON parameter, for `IN (…)`. */
const list = (dialect: Dialect, alias: string, names: readonly string[]) =>
  `SELECT ${names.map((name) => `${alias}.${name}`).join(', ')} FROM ${dialect.rowsFrom(alias, names.map(text))}`;

const lockOf = (dialect: Dialect, lock: ProjectLock) =>
  lock === 'update' ? dialect.exclusiveRowsSuffix : lock === 'no-key-update' ? dialect.lockRowsSuffix : dialect.keyShareRowsSuffix;

interface CounterRow {
  organization_id: string;
  kind: string;
  quota: number | null;
  kind_default: number | null;
  quota_generation: number;
  committed: number;
  reserved: number;
  held: number;
  guaranteed: number;
  shortfall: number;
  updated_by: string | null;
}

interface ProjectCounterRow {
  organization_id: string;
  project_id: string;
  kind: string;
  cap: number | null;
  guaranteed: number;
  committed: number;
  reserved: number;
  held: number;
  updated_by: string | null;
}

interface KeyRow {
  principal: string;
  idempotency_key: string;
  request_hash: string;
  state: 'pending' | 'done';
  status: number | null;
  headers: string | null;
  body: string | null;
  created_at: number;
}

/** The due holds of each organization, in id order, as loaded (for the group's expiry). */
export type DueHolds = Map<string, RecordState[]>;

export async function load(
  tx: Executor,
  dialect: Dialect,
  plan: Plan,
  nowMs: number,
): Promise<{ ws: WorkingSet; due: DueHolds }> {
  const ws = new WorkingSet(nowMs);
  await loadProjects(tx, dialect, plan, ws);
  const due = await loadRecords(tx, dialect, plan, ws, nowMs);
  await loadKeys(tx, dialect, plan, ws);
  await loadKinds(tx, dialect, plan, ws);
  await loadResources(tx, dialect, plan, ws);
  await loadCounters(tx, dialect, plan, ws, nowMs);
  await loadOrganizations(tx, dialect, plan, ws);
  return { ws, due };
}

async function loadProjects(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet) {
  if (plan.projects.size === 0) return;
  const rows = await tx.all<{ organization_id: string; id: string; quota_generation: number }>(
    `SELECT organization_id, id, quota_generation FROM projects
      WHERE deleted_at IS NULL AND (organization_id, id) IN (${list(dialect, 'v', ['organization', 'project'])})
      ORDER BY organization_id, id${lockOf(dialect, plan.projectLock)}`,
    [JSON.stringify([...plan.projects.values()])],
  );
  for (const row of rows) {
    ws.load(ws.projects, ws.loaded.projects, projectKey(row.organization_id, row.id), {
      organization: row.organization_id,
      id: row.id,
      quotaGeneration: row.quota_generation,
      deletedAt: null,
    });
  }
}

/**
 * The records the group names, its organizations' due holds (at most a bounded number each, in
 * id order) and, for a project's deletion, the project's live records: locked in one statement
 * in id order, with their lines. A row that changed while this waited for its lock comes back as
 * it is now, so a hold another transaction resolved is no longer due.
 */
async function loadRecords(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet, nowMs: number): Promise<DueHolds> {
  const organizations = [...plan.organizations].map((organization) => ({ organization }));
  const rows = await tx.all<AllocationRow>(
    `SELECT * FROM allocations WHERE id IN (
        ${list(dialect, 't', ['id'])}
        UNION ALL
        SELECT d.id FROM (SELECT x.id, row_number() OVER (PARTITION BY x.organization_id ORDER BY x.id) AS n
            FROM allocations x
            WHERE x.organization_id IN (${list(dialect, 'o', ['organization'])})
              AND x.state = 'held' AND x.deleted_at IS NULL AND x.expires_at <= ?) d
          WHERE d.n <= ?
        UNION ALL
        SELECT y.id FROM allocations y
          WHERE y.deleted_at IS NULL AND (y.organization_id, y.project_id) IN (${list(dialect, 'p', ['organization', 'project'])}))
      ORDER BY id${dialect.lockRowsSuffix}`,
    [
      JSON.stringify([...plan.records].map((id) => ({ id }))),
      JSON.stringify(organizations),
      nowMs,
      expiredHoldsPerDecisionMax,
      JSON.stringify([...plan.projectRecords.values()]),
    ],
  );
  const due: DueHolds = new Map();
  if (rows.length === 0) return due;
  const lines = await tx.all<Line & { allocation_id: string }>(
    `SELECT allocation_id, kind, committed, reserved FROM allocation_lines
      WHERE allocation_id IN (${list(dialect, 'v', ['id'])}) ORDER BY allocation_id, kind`,
    [JSON.stringify(rows.map(({ id }) => ({ id })))],
  );
  const linesOf = new Map<string, Line[]>();
  for (const { allocation_id, kind, committed, reserved } of lines) {
    linesOf.set(allocation_id, [...(linesOf.get(allocation_id) ?? []), { kind, committed, reserved }]);
  }
  for (const row of rows) {
    const record: RecordState = { row: { ...row }, lines: linesOf.get(row.id) ?? [] };
    ws.load(ws.records, ws.loaded.records, row.id, record);
    // A record named by id in another organization than the group's is not found: no more.
    if (!plan.organizations.has(row.organization_id)) continue;
    // Its counters are needed whatever happens to it (an expiry, a change, a deletion).
    for (const line of record.lines) plan.counter(row.organization_id, row.project_id, line.kind);
    if (row.deleted_at === null) ws.liveResources.set(resourceKey(row.organization_id, row.resource_kind, row.resource_id), row.id);
    const isDue = row.state === 'held' && row.deleted_at === null && row.expires_at !== null && row.expires_at <= nowMs;
    if (isDue) due.set(row.organization_id, [...(due.get(row.organization_id) ?? []), ws.records.get(row.id)!]);
  }
  return due;
}

async function loadKeys(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet) {
  if (plan.keys.size === 0) return;
  const rows = await tx.all<KeyRow>(
    `SELECT principal, idempotency_key, request_hash, state, status, headers, body, created_at FROM idempotency_keys
      WHERE (principal, idempotency_key) IN (${list(dialect, 'v', ['principal', 'key'])})
      ORDER BY principal, idempotency_key${dialect.lockRowsSuffix}`,
    [JSON.stringify([...plan.keys.values()])],
  );
  for (const { principal, key } of plan.keys.values()) ws.load(ws.keys, ws.loaded.keys, idempotencyKey(principal, key), null);
  for (const row of rows) {
    const response: StoredResponse | null =
      row.state === 'done'
        ? {
            status: row.status!,
            headers: JSON.parse(row.headers ?? '{}') as Record<string, string>,
            body: row.body === null ? undefined : (JSON.parse(row.body) as unknown),
          }
        : null;
    ws.load(ws.keys, ws.loaded.keys, idempotencyKey(row.principal, row.idempotency_key), {
      principal: row.principal,
      key: row.idempotency_key,
      requestHash: row.request_hash,
      state: row.state,
      response,
      createdAt: row.created_at,
    });
  }
}

async function loadKinds(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet) {
  if (plan.kinds.size === 0 && plan.allKindsOf.size === 0) return;
  const all = plan.allKindsOf.size > 0;
  const rows = await tx.all<{ name: string; display_name: string; description: string; default_quota: number | null; format: KindFormat }>(
    `SELECT name, display_name, description, default_quota, format FROM resource_kinds
      ${all ? '' : `WHERE name IN (${list(dialect, 'v', ['name'])})`} ORDER BY name`,
    all ? [] : [JSON.stringify([...plan.kinds].map((name) => ({ name })))],
  );
  for (const row of rows) {
    ws.kinds.set(row.name, {
      name: row.name,
      displayName: row.display_name,
      description: row.description,
      default: row.default_quota,
      format: row.format,
    });
  }
  for (const organization of plan.allKindsOf) ws.allKindsOf.add(organization);
}

/** Which referenced resources already have a live allocation or pending hold (no lock: the unique index decides races). */
async function loadResources(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet) {
  const asked = [...plan.resources.values()].filter((r) => !ws.liveResources.has(resourceKey(r.organization, r.kind, r.id)));
  if (asked.length === 0) return;
  const rows = await tx.all<{ organization_id: string; resource_kind: string; resource_id: string; id: string }>(
    `SELECT organization_id, resource_kind, resource_id, id FROM allocations
      WHERE deleted_at IS NULL AND (organization_id, resource_kind, resource_id) IN (${list(dialect, 'v', ['organization', 'kind', 'id'])})`,
    [JSON.stringify(asked)],
  );
  for (const r of asked) ws.liveResources.set(resourceKey(r.organization, r.kind, r.id), null);
  for (const row of rows) {
    const key = resourceKey(row.organization_id, row.resource_kind, row.resource_id);
    // A row locked above is already known as it is now (it may have been resolved).
    if (!ws.records.has(row.id)) ws.liveResources.set(key, row.id);
  }
}

/**
 * The counters: the missing rows created first (the project's with no cap, the organization's
 * with the kind's default, read under the kind's share lock so a default being changed is
 * either copied or applied after), then every row locked, projects' before organizations'.
 */
async function loadCounters(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet, nowMs: number) {
  const keys = [...plan.counters.values()];
  const own = keys.filter((key) => key.project !== null);
  const theirs = keys.filter((key) => key.project === null);
  const allProjects = [...plan.allProjectCountersOf.values()];
  if (keys.length === 0 && allProjects.length === 0) return;
  await tx.runMany([
    {
      sql: `INSERT INTO project_counters (organization_id, project_id, kind, updated_at)
          SELECT v.organization, v.project, v.kind, ? FROM ${dialect.rowsFrom('v', ['organization', 'project', 'kind'].map(text))}
          JOIN projects p ON p.organization_id = v.organization AND p.id = v.project AND p.deleted_at IS NULL
          JOIN resource_kinds k ON k.name = v.kind
          WHERE NOT EXISTS (SELECT 1 FROM project_counters c
            WHERE c.organization_id = v.organization AND c.project_id = v.project AND c.kind = v.kind)
          ON CONFLICT (organization_id, project_id, kind) DO NOTHING`,
      params: [nowMs, JSON.stringify(own)],
    },
    {
      sql: `INSERT INTO quota_counters (organization_id, kind, quota, kind_default, committed, reserved, held, updated_at)
          SELECT v.organization, k.name, NULL, k.default_quota, 0, 0, 0, ? FROM ${dialect.rowsFrom('v', ['organization', 'kind'].map(text))}
          JOIN organizations o ON o.id = v.organization
          JOIN resource_kinds k ON k.name = v.kind
          WHERE NOT EXISTS (SELECT 1 FROM quota_counters c WHERE c.organization_id = v.organization AND c.kind = v.kind)
          ${dialect.shareRowsOf('k')}
          ON CONFLICT (organization_id, kind) DO NOTHING`,
      params: [nowMs, JSON.stringify(theirs)],
    },
  ]);
  const projectRows = await tx.all<ProjectCounterRow>(
    `SELECT organization_id, project_id, kind, cap, guaranteed, committed, reserved, held, updated_by FROM project_counters
      WHERE (organization_id, project_id, kind) IN (
        ${list(dialect, 'v', ['organization', 'project', 'kind'])}
        UNION SELECT c.organization_id, c.project_id, c.kind FROM project_counters c
          WHERE (c.organization_id, c.project_id) IN (${list(dialect, 'w', ['organization', 'project'])}))
      ORDER BY organization_id, project_id, kind${dialect.lockRowsSuffix}`,
    [JSON.stringify(own), JSON.stringify(allProjects)],
  );
  for (const row of projectRows) {
    const key = projectCounterKey(row.organization_id, row.project_id, row.kind);
    ws.load(ws.projectCounters, ws.loaded.projectCounters, key, {
      organization: row.organization_id,
      project: row.project_id,
      kind: row.kind,
      cap: row.cap,
      guaranteed: row.guaranteed,
      committed: row.committed,
      reserved: row.reserved,
      held: row.held,
      updatedBy: row.updated_by,
      removed: false,
    });
  }
  // A project's deletion needs the organization's counter of every kind the project has.
  const theirsToo = [...theirs, ...projectRows.map((row) => ({ organization: row.organization_id, kind: row.kind }))];
  const organizationRows = await tx.all<CounterRow>(
    `SELECT organization_id, kind, quota, kind_default, quota_generation, committed, reserved, held, guaranteed, shortfall, updated_by
      FROM quota_counters
      WHERE (organization_id, kind) IN (
        ${list(dialect, 'v', ['organization', 'kind'])}
        UNION SELECT c.organization_id, c.kind FROM quota_counters c
          WHERE c.organization_id IN (${list(dialect, 'w', ['organization'])}))
      ORDER BY organization_id, kind${dialect.lockRowsSuffix}`,
    [JSON.stringify(theirsToo), JSON.stringify([...plan.allKindsOf].map((organization) => ({ organization })))],
  );
  for (const row of organizationRows) {
    ws.load(ws.counters, ws.loaded.counters, counterKey(row.organization_id, row.kind), {
      organization: row.organization_id,
      kind: row.kind,
      quota: row.quota,
      kindDefault: row.kind_default,
      quotaGeneration: row.quota_generation,
      committed: row.committed,
      reserved: row.reserved,
      held: row.held,
      guaranteed: row.guaranteed,
      shortfall: row.shortfall,
      updatedBy: row.updated_by,
    });
  }
  // Every row of an existing project and kind is there now: created above, or by a group that
  // committed first (then the ON CONFLICT waited for it, and the lock read it as it is now).
  for (const key of own) {
    if (ws.project(key.organization, key.project!) && ws.kinds.has(key.kind)) {
      assert(ws.projectCounters.has(projectCounterKey(key.organization, key.project!, key.kind)), 'project counter loaded');
    }
  }
}

async function loadOrganizations(tx: Executor, dialect: Dialect, plan: Plan, ws: WorkingSet) {
  const rows = await tx.all<{ id: string; revision: number; quota_generation: number }>(
    `SELECT id, revision, quota_generation FROM organizations WHERE id IN (${list(dialect, 'v', ['organization'])})
      ORDER BY id${dialect.lockRowsSuffix}`,
    [JSON.stringify([...plan.organizations].map((organization) => ({ organization })))],
  );
  for (const row of rows) {
    ws.load(ws.organizations, ws.loaded.organizations, row.id, {
      id: row.id,
      revision: row.revision,
      quotaGeneration: row.quota_generation,
    });
  }
}
