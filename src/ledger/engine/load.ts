/**
 * What a group of decisions reads before it decides, and the locks it takes, in the one global
 * order every transaction that changes usage follows:
 *
 *   projects → records (allocations and holds, by id) → idempotency keys
 *     → project counters → organization counters → organizations
 *
 * each set sorted by its key. A group locks everything it may change before it changes
 * anything, so it never waits for a row while holding a later one: no deadlock, and the hot
 * counter rows stay locked only from their read to the commit. The reads come in two steps
 * (the counters to lock depend on the records' lines), each one statement on PostgreSQL (one
 * round trip), whatever the group's size.
 *
 * Composite keys are matched as keys (`dialect.keyed`: one index probe each, never one per
 * combination of each column's values, which grows as the square of a spread group). Rows
 * are kept only when asked for. Counters are locked per organization and project, every
 * kind: a group holds its organizations' rows to the commit anyway (the journal's revision),
 * so this adds no waiting.
 */
import { expiredHoldsPerDecisionMax } from '../../domain/constants.js';
import type { Line } from '../../domain/decision.js';
import type { Dialect, Executor, Statement } from '../../store/store.js';
import { ensureCounter, ensureProjectCounter } from '../counters.js';
import type { StoredResponse } from '../idempotency/keys.js';
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

interface KindRow {
  name: string;
  display_name: string;
  description: string;
  default_quota: number | null;
  format: KindFormat;
}

/** The due holds of each organization, in id order, as loaded (for the group's expiry). */
export type DueHolds = Map<string, RecordState[]>;

/**
 * Due holds were found where the group looked only for whether there are any: it runs again
 * reading them (in the order of its locks), which is rare — the sweeper and every decision
 * resolve them as they fall due.
 */
export class DueHoldsFound extends Error {
  override name = 'DueHoldsFound';
}

/**
 * Loads the group's rows. `withDue`: read each organization's due holds (a bounded number),
 * to expire them in this group; else only probe for any, and throw `DueHoldsFound` if there
 * are (the probe is one index range per organization; reading them is three window queries).
 */
export async function load(
  tx: Executor,
  dialect: Dialect,
  plan: Plan,
  nowMs: number,
  withDue: boolean,
): Promise<{ ws: WorkingSet; due: DueHolds }> {
  const ws = new WorkingSet(nowMs);
  // A group that names no record by id (creates and holds: the hot path) reads everything in
  // one step: the only records it locks are due holds, whose lines cannot change while they
  // are pending, so they may be read in the same snapshot as the locks.
  const oneStep = plan.records.size === 0 && plan.projectRecords.size === 0;
  const due = withDue ? dueQuery(dialect, plan, nowMs) : null;
  const first = firstQueries(dialect, plan, nowMs, due);
  if (oneStep) {
    const second = secondQueries(dialect, plan, due ? { due } : { records: [] });
    const results = await tx.selectMany([...first.statements, ...second.statements]);
    const found = first.read(ws, results.slice(0, first.statements.length));
    second.read(ws, results.slice(first.statements.length));
    checkCountersExist(plan, ws);
    return { ws, due: found };
  }
  // A project's deletion takes its project's lock in a statement of its own first: decisions
  // in flight there commit before it, and the records read next (a new snapshot) include theirs.
  const results =
    plan.projectLock === 'update' && plan.projects.size > 0
      ? [...(await tx.selectMany(first.statements.slice(0, 1))), ...(await tx.selectMany(first.statements.slice(1)))]
      : await tx.selectMany(first.statements);
  const found = first.read(ws, results);
  const second = secondQueries(dialect, plan, { records: [...ws.records.values()] });
  second.read(ws, await tx.selectMany(second.statements));
  checkCountersExist(plan, ws);
  return { ws, due: found };
}

/** The ids of the organizations' due holds, a bounded number each, in id order (a subquery). */
function dueQuery(dialect: Dialect, plan: Plan, nowMs: number): Statement {
  return {
    sql: `SELECT d.id FROM (SELECT x.id, row_number() OVER (PARTITION BY x.organization_id ORDER BY x.id) AS n
          FROM allocations x
          WHERE ${dialect.inList('x.organization_id')} AND x.state = 'held' AND x.deleted_at IS NULL AND x.expires_at <= ?) d
        WHERE d.n <= ?`,
    params: [dialect.list([...plan.organizations]), nowMs, expiredHoldsPerDecisionMax],
  };
}

/**
 * The first step: the projects (locked as the group's strongest operation needs), the records
 * the group names, its organizations' due holds (a bounded number each) and a deleted project's
 * live records (locked, by id), the idempotency keys (locked), and, unlocked, the kinds and the
 * live allocation of each referenced resource (the unique index decides races on those).
 */
function firstQueries(dialect: Dialect, plan: Plan, nowMs: number, due: Statement | null) {
  const projects = [...plan.projects.values()];
  const projectRecords = [...plan.projectRecords.values()];
  const keys = [...plan.keys.values()];
  const resources = [...plan.resources.values()];
  const everyKind = plan.allKindsOf.size > 0 || plan.everyKind;
  const named = plan.records.size > 0 || projectRecords.length > 0;
  const queries: (Statement | null)[] = [
    projects.length === 0
      ? null
      : {
          sql: `SELECT t.organization_id, t.id, t.quota_generation ${dialect.keyed('projects', ['organization_id', 'id'], { filter: 'deleted_at IS NULL', lock: lockOf(dialect, plan.projectLock) })}
            ORDER BY t.organization_id, t.id`,
          params: dialect.keys(projects.map((p) => [p.organization, p.project]), 2),
        },
    !named && due === null
      ? null
      : {
          sql: named
            ? `SELECT * FROM allocations WHERE ${dialect.inQuery(
                'id',
                `${dialect.listValues()}${due ? ` UNION ALL ${due.sql}` : ''}
                  UNION ALL
                  SELECT t.id ${dialect.keyed('allocations', ['organization_id', 'project_id'], { filter: 'deleted_at IS NULL' })}`,
              )}
                ORDER BY id${dialect.lockRowsSuffix}`
            : `SELECT * FROM allocations WHERE ${dialect.inQuery('id', due!.sql)} ORDER BY id${dialect.lockRowsSuffix}`,
          params: named
            ? [
                dialect.list([...plan.records]),
                ...(due?.params ?? []),
                ...dialect.keys(projectRecords.map((p) => [p.organization, p.project]), 2),
              ]
            : due!.params,
        },
    keys.length === 0
      ? null
      : {
          sql: `SELECT t.principal, t.idempotency_key, t.request_hash, t.state, t.status, t.headers, t.body, t.created_at
            ${dialect.keyed('idempotency_keys', ['principal', 'idempotency_key'], { lock: dialect.lockRowsSuffix })}
            ORDER BY t.principal, t.idempotency_key`,
          params: dialect.keys(keys.map((k) => [k.principal, k.key]), 2),
        },
    // Every kind when an answer lists them all, or a deletion may meet any; else those named.
    // (The kinds of records' lines exist: they were checked when the records were written.)
    {
      sql: `SELECT name, display_name, description, default_quota, format FROM resource_kinds
        ${everyKind ? '' : `WHERE ${dialect.inList('name')}`} ORDER BY name`,
      params: everyKind ? [] : [dialect.list([...plan.kinds])],
    },
    resources.length === 0
      ? null
      : {
          sql: `SELECT t.organization_id, t.resource_kind, t.resource_id, t.id
            ${dialect.keyed('allocations', ['organization_id', 'resource_kind', 'resource_id'], { filter: 'deleted_at IS NULL' })}`,
          params: dialect.keys(resources.map((r) => [r.organization, r.kind, r.id]), 3),
        },
    // Whether any organization has a due hold (when they are not read).
    due !== null
      ? null
      : {
          sql: `SELECT organization_id FROM allocations
            WHERE ${dialect.inList('organization_id')} AND state = 'held' AND deleted_at IS NULL AND expires_at <= ? LIMIT 1`,
          params: [dialect.list([...plan.organizations]), nowMs],
        },
  ];
  const statements = queries.filter((query): query is Statement => query !== null);
  const read = (ws: WorkingSet, results: unknown[][]): DueHolds => {
    const rowsOf = <T>(index: number): T[] => (queries[index] === null ? [] : (results[statements.indexOf(queries[index]!)] as T[]));
    for (const row of rowsOf<{ organization_id: string; id: string; quota_generation: number }>(0)) {
      const key = projectKey(row.organization_id, row.id);
      if (!plan.projects.has(key)) continue;
      ws.load(ws.projects, ws.loaded.projects, key, {
        organization: row.organization_id,
        id: row.id,
        quotaGeneration: row.quota_generation,
        deletedAt: null,
      });
    }
    const records = rowsOf<AllocationRow>(1).sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const row of records) {
      ws.load(ws.records, ws.loaded.records, row.id, { row: { ...row }, lines: [] });
      if (row.deleted_at === null) ws.liveResources.set(resourceKey(row.organization_id, row.resource_kind, row.resource_id), row.id);
    }
    for (const { principal, key } of keys) ws.load(ws.keys, ws.loaded.keys, idempotencyKey(principal, key), null);
    for (const row of rowsOf<KeyRow>(2)) {
      const key = idempotencyKey(row.principal, row.idempotency_key);
      if (!plan.keys.has(key)) continue;
      const response: StoredResponse | null =
        row.state === 'done'
          ? {
              status: row.status!,
              headers: JSON.parse(row.headers ?? '{}') as Record<string, string>,
              body: row.body === null ? undefined : (JSON.parse(row.body) as unknown),
            }
          : null;
      ws.load(ws.keys, ws.loaded.keys, key, {
        principal: row.principal,
        key: row.idempotency_key,
        requestHash: row.request_hash,
        state: row.state,
        response,
        createdAt: row.created_at,
      });
    }
    for (const row of rowsOf<KindRow>(3)) {
      ws.kinds.set(row.name, { name: row.name, displayName: row.display_name, description: row.description, default: row.default_quota, format: row.format });
    }
    for (const organization of plan.allKindsOf) ws.allKindsOf.add(organization);
    const asked = new Set(resources.map((r) => resourceKey(r.organization, r.kind, r.id)));
    for (const key of asked) if (!ws.liveResources.has(key)) ws.liveResources.set(key, null);
    for (const row of rowsOf<{ organization_id: string; resource_kind: string; resource_id: string; id: string }>(4)) {
      const key = resourceKey(row.organization_id, row.resource_kind, row.resource_id);
      // A record locked above is known as it is now (it may have been resolved meanwhile).
      if (asked.has(key) && !ws.records.has(row.id)) ws.liveResources.set(key, row.id);
    }
    if (rowsOf(5).length > 0) throw new DueHoldsFound();
    const due: DueHolds = new Map();
    for (const row of records) {
      const isDue = row.state === 'held' && row.deleted_at === null && row.expires_at !== null && row.expires_at <= nowMs;
      // A record named by id in an organization the group does not decide on is not found: no more.
      if (isDue && plan.organizations.has(row.organization_id)) {
        due.set(row.organization_id, [...(due.get(row.organization_id) ?? []), ws.records.get(row.id)!]);
      }
    }
    return due;
  };
  return { statements, read };
}

/**
 * The second step: the locked records' lines (read after their locks, so as they are), then
 * the counters of every project and organization the group touches, locked, and the
 * organizations' rows, locked last. In one step with the first, the records are the due holds,
 * named by their subquery.
 */
function secondQueries(
  dialect: Dialect,
  plan: Plan,
  records: { records: readonly RecordState[] } | { due: Statement },
): { statements: Statement[]; read(ws: WorkingSet, results: unknown[][]): void } {
  const organizations = [...plan.organizations];
  const projects = new Map<string, { organization: string; project: string }>(plan.projects);
  if ('records' in records) {
    for (const { row } of records.records) {
      if (plan.organizations.has(row.organization_id)) {
        projects.set(projectKey(row.organization_id, row.project_id), { organization: row.organization_id, project: row.project_id });
      }
    }
  }
  const projectList = [...projects.values()];
  const lines: Statement | null =
    'records' in records
      ? records.records.length === 0
        ? null
        : {
          sql: `SELECT allocation_id, kind, committed, reserved FROM allocation_lines
            WHERE ${dialect.inList('organization_id')} AND ${dialect.inList('allocation_id')} ORDER BY allocation_id, kind`,
          params: [dialect.list([...plan.organizations]), dialect.list(records.records.map(({ row }) => row.id))],
        }
      : {
          sql: `SELECT allocation_id, kind, committed, reserved FROM allocation_lines
            WHERE ${dialect.inList('organization_id')} AND ${dialect.inQuery('allocation_id', records.due.sql)} ORDER BY allocation_id, kind`,
          params: [dialect.list([...plan.organizations]), ...records.due.params],
        };
  // The due holds' projects are named by their subquery too.
  const dueProjects =
    'due' in records
      ? { sql: `SELECT z.organization_id, z.project_id FROM allocations z WHERE ${dialect.inQuery('z.id', records.due.sql)}`, params: records.due.params }
      : { sql: undefined, params: [] };
  const statements = [
    {
      sql: `SELECT t.organization_id, t.project_id, t.kind, t.cap, t.guaranteed, t.committed, t.reserved, t.held, t.updated_by
        ${dialect.keyed('project_counters', ['organization_id', 'project_id'], { more: dueProjects.sql, lock: dialect.lockRowsSuffix })}
        ORDER BY t.organization_id, t.project_id, t.kind`,
      params: [...dialect.keys(projectList.map((p) => [p.organization, p.project]), 2), ...dueProjects.params],
    },
    {
      sql: `SELECT organization_id, kind, quota, kind_default, quota_generation, committed, reserved, held, guaranteed, shortfall, updated_by
        FROM quota_counters WHERE ${dialect.inList('organization_id')}
        ORDER BY organization_id, kind${dialect.lockRowsSuffix}`,
      params: [dialect.list(organizations)],
    },
    {
      sql: `SELECT id, revision, quota_generation FROM organizations WHERE ${dialect.inList('id')}
        ORDER BY id${dialect.lockRowsSuffix}`,
      params: [dialect.list(organizations)],
    },
  ];
  return {
    statements: lines === null ? statements : [lines, ...statements],
    read: (ws, results) => readSecond(plan, ws, lines === null ? [[], ...results] : results),
  };
}

function readSecond(plan: Plan, ws: WorkingSet, results: unknown[][]): void {
  const [lines, projectCounters, counters, organizationRows] = results as [
    (Line & { allocation_id: string })[],
    ProjectCounterRow[],
    CounterRow[],
    { id: string; revision: number; quota_generation: number }[],
  ];
  const linesOf = new Map<string, Line[]>();
  for (const { allocation_id, kind, committed, reserved } of lines) {
    linesOf.set(allocation_id, [...(linesOf.get(allocation_id) ?? []), { kind, committed, reserved }]);
  }
  for (const [id, record] of ws.records) {
    const sorted = (linesOf.get(id) ?? []).sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
    record.lines = sorted;
    ws.loaded.records.get(id)!.lines = sorted.map((line) => ({ ...line }));
    // Its counters are needed whatever happens to it (an expiry, a change, a deletion).
    if (plan.organizations.has(record.row.organization_id)) {
      for (const line of sorted) plan.counter(record.row.organization_id, record.row.project_id, line.kind);
    }
  }
  for (const row of projectCounters) loadProjectCounter(ws, row);
  for (const row of counters) loadCounter(ws, row);
  for (const row of organizationRows) {
    ws.load(ws.organizations, ws.loaded.organizations, row.id, { id: row.id, revision: row.revision, quotaGeneration: row.quota_generation });
  }
}

/**
 * Counter rows the group needs that do not exist yet: a project's first use of a kind, or an
 * organization's. Creating them here, with later rows already locked, could wait for a row
 * another group holds while it waits for ours; so the group stops (`CountersMissing`), they
 * are created in a transaction of their own, and the group runs again and finds them.
 */
export class CountersMissing extends Error {
  override name = 'CountersMissing';
  constructor(readonly keys: readonly { organization: string; project: string | null; kind: string }[]) {
    super(`${keys.length} counter rows to create`);
  }
}

function checkCountersExist(plan: Plan, ws: WorkingSet): void {
  const wanted = [...plan.counters.values()].filter((key) => ws.kinds.has(key.kind));
  const missing = wanted.filter((key) =>
    key.project !== null
      ? ws.project(key.organization, key.project) !== undefined && !ws.projectCounters.has(projectCounterKey(key.organization, key.project, key.kind))
      : ws.organization(key.organization) !== undefined && !ws.counters.has(counterKey(key.organization, key.kind)),
  );
  if (missing.length > 0) throw new CountersMissing(missing);
}

/** Creates counter rows (in their own transaction: they hold no other lock). */
export async function createCounters(tx: Executor, dialect: Dialect, keys: CountersMissing['keys'], nowMs: number): Promise<void> {
  // In one order everywhere, so two such transactions never wait on each other's new rows.
  const order = (k: CountersMissing['keys'][number]) => `${k.project === null ? 1 : 0}\u0000${k.organization}\u0000${k.project ?? ''}\u0000${k.kind}`;
  for (const key of [...keys].sort((a, b) => (order(a) < order(b) ? -1 : 1))) {
    if (key.project !== null) await ensureProjectCounter(tx, key.organization, key.project, key.kind, nowMs);
    else await ensureCounter({ tx, dialect }, key.organization, key.kind, nowMs);
  }
}

function loadProjectCounter(ws: WorkingSet, row: ProjectCounterRow): void {
  ws.load(ws.projectCounters, ws.loaded.projectCounters, projectCounterKey(row.organization_id, row.project_id, row.kind), {
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

function loadCounter(ws: WorkingSet, row: CounterRow): void {
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
