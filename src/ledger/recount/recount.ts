/**
 * The recount: recomputes every usage counter from the live allocations and pending holds and
 * compares it with the stored one (invariant 2), at both levels: the organization's counters,
 * and each project's. The organization's row also carries the sum of the projects' guarantees
 * and their shortfall, recomputed from the project rows' guarantees and the true usage. It
 * reads in one snapshot, so a recount taken under load reports no false drift.
 * `repairOrganization` fixes what it finds with that organization's counters locked, and
 * journals the correction (stored and true values).
 */
import { shortfallOf } from '../../domain/decision.js';
import type { Executor } from '../../store/store.js';
import type { WriteContext } from '../context.js';
import { journalPageSizeMax } from '../../domain/constants.js';
import { appendJournal, readJournal } from '../journal/journal.js';
import type { CounterDiscrepancy, CounterValues, JournalDiscrepancy } from '../types.js';

interface SumRow {
  organization_id: string;
  project_id?: string;
  kind: string;
  committed: number;
  reserved: number;
  held: number;
}

interface GuaranteeRow {
  organization_id: string;
  project_id: string;
  kind: string;
  guaranteed: number;
}

const storedSql = `SELECT organization_id, kind, committed, reserved, held, guaranteed, shortfall FROM quota_counters`;
const storedProjectSql = `SELECT organization_id, project_id, kind, committed, reserved, held FROM project_counters`;

// Pending holds count as held (committed + reserved of their lines) until resolved, expired
// or not: a decision resolves expired holds before it counts, and so does the recount's
// caller when it repairs.
const actualSql = `SELECT a.organization_id, a.project_id, l.kind,
    CAST(SUM(CASE WHEN a.state = 'live' THEN l.committed ELSE 0 END) AS BIGINT) AS committed,
    CAST(SUM(CASE WHEN a.state = 'live' THEN l.reserved ELSE 0 END) AS BIGINT) AS reserved,
    CAST(SUM(CASE WHEN a.state = 'held' THEN l.committed + l.reserved ELSE 0 END) AS BIGINT) AS held
  FROM allocation_lines l JOIN allocations a ON a.id = l.allocation_id AND a.organization_id = l.organization_id
  WHERE a.deleted_at IS NULL`;

export async function findDiscrepancies(
  tx: Executor,
  organization?: string,
): Promise<CounterDiscrepancy[]> {
  const one = organization === undefined ? '' : ' WHERE organization_id = ?';
  const filter = organization === undefined ? [] : [organization];
  const stored = await tx.all<SumRow & { guaranteed: number; shortfall: number }>(storedSql + one, filter);
  const storedProjects = await tx.all<SumRow>(storedProjectSql + one, filter);
  const guarantees = await tx.all<GuaranteeRow>(
    `SELECT organization_id, project_id, kind, guaranteed FROM project_counters WHERE guaranteed > 0` +
      (organization === undefined ? '' : ' AND organization_id = ?'),
    filter,
  );
  const actualProjects = await tx.all<SumRow>(
    actualSql +
      (organization === undefined ? '' : ' AND a.organization_id = ?') +
      ' GROUP BY a.organization_id, a.project_id, l.kind',
    filter,
  );
  // The organization's true values: the sum of its projects', and the guarantees' sum and
  // shortfall from each project's guarantee and true usage.
  const projectKey = (row: { organization_id: string; project_id?: string; kind: string }) =>
    `${row.organization_id}\u0000${row.project_id}\u0000${row.kind}`;
  const actualByProject = new Map(actualProjects.map((row) => [projectKey(row), row]));
  const actual = new Map<string, SumRow & { guaranteed: number; shortfall: number }>();
  const organizationOf = (row: { organization_id: string; kind: string }) => {
    const key = `${row.organization_id}\u0000${row.kind}`;
    const found = actual.get(key) ?? {
      organization_id: row.organization_id,
      kind: row.kind,
      ...countersOf(undefined),
      guaranteed: 0,
      shortfall: 0,
    };
    actual.set(key, found);
    return found;
  };
  for (const row of actualProjects) {
    const sum = organizationOf(row);
    sum.committed += row.committed;
    sum.reserved += row.reserved;
    sum.held += row.held;
  }
  for (const row of guarantees) {
    const sum = organizationOf(row);
    const used = countersOf(actualByProject.get(projectKey(row)));
    sum.guaranteed += row.guaranteed;
    sum.shortfall += shortfallOf(row.guaranteed, used.committed + used.reserved + used.held);
  }
  const found = [
    ...compare(stored, [...actual.values()], (row) => `${row.organization_id}\u0000${row.kind}`, true),
    ...compare(storedProjects, actualProjects, projectKey, false),
  ];
  return found.sort((a, b) =>
    a.organization !== b.organization
      ? a.organization.localeCompare(b.organization)
      : (a.project ?? '') !== (b.project ?? '')
        ? (a.project ?? '').localeCompare(b.project ?? '')
        : a.kind.localeCompare(b.kind),
  );
}

const countersOf = (row: SumRow | undefined) => ({
  committed: row?.committed ?? 0,
  reserved: row?.reserved ?? 0,
  held: row?.held ?? 0,
});

type Comparable = SumRow & { guaranteed?: number; shortfall?: number };

/**
 * Pairs stored and true rows by key and reports every pair that differs. For organizations
 * (`withGuarantees`) the guarantees' sum and shortfall are compared too, and reported only
 * when they differ.
 */
function compare(
  stored: readonly Comparable[],
  actual: readonly Comparable[],
  key: (row: Comparable) => string,
  withGuarantees: boolean,
): CounterDiscrepancy[] {
  const actualByKey = new Map(actual.map((row) => [key(row), row]));
  const discrepancies: CounterDiscrepancy[] = [];
  const report = (of: Comparable, storedRow: Comparable | undefined, actualRow: Comparable | undefined) => {
    const s: CounterValues = countersOf(storedRow);
    const a: CounterValues = countersOf(actualRow);
    let differs = s.committed !== a.committed || s.reserved !== a.reserved || s.held !== a.held;
    if (withGuarantees) {
      const sg = { guaranteed: storedRow?.guaranteed ?? 0, shortfall: storedRow?.shortfall ?? 0 };
      const ag = { guaranteed: actualRow?.guaranteed ?? 0, shortfall: actualRow?.shortfall ?? 0 };
      if (sg.guaranteed !== ag.guaranteed || sg.shortfall !== ag.shortfall) {
        Object.assign(s, sg);
        Object.assign(a, ag);
        differs = true;
      }
    }
    if (!differs) return;
    discrepancies.push({
      organization: of.organization_id,
      ...(of.project_id === undefined ? {} : { project: of.project_id }),
      kind: of.kind,
      stored: s,
      actual: a,
    });
  };
  for (const row of stored) {
    report(row, row, actualByKey.get(key(row)));
    actualByKey.delete(key(row));
  }
  // Usage with no counter row at all.
  for (const row of actualByKey.values()) report(row, undefined, row);
  return discrepancies;
}

/** Locks one organization's counters, recounts them, writes the true values and journals. */
export async function repairOrganization(
  context: WriteContext,
  organization: string,
): Promise<CounterDiscrepancy[]> {
  const { tx, dialect, nowMs } = context;
  await tx.all(
    // The decisions' lock order: project counters by project, then kind.
    `SELECT kind FROM project_counters WHERE organization_id = ? ORDER BY project_id, kind${dialect.lockRowsSuffix}`,
    [organization],
  );
  await tx.all(
    `SELECT kind FROM quota_counters WHERE organization_id = ? ORDER BY kind${dialect.lockRowsSuffix}`,
    [organization],
  );
  const found = await findDiscrepancies(tx, organization);
  for (const { project, kind, actual } of found) {
    if (project !== undefined) {
      await tx.run(
        `INSERT INTO project_counters (organization_id, project_id, kind, committed, reserved, held, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (organization_id, project_id, kind)
          DO UPDATE SET committed = excluded.committed, reserved = excluded.reserved,
            held = excluded.held, updated_at = excluded.updated_at`,
        [organization, project, kind, actual.committed, actual.reserved, actual.held, nowMs],
      );
      continue;
    }
    await tx.run(
      `INSERT INTO quota_counters (organization_id, kind, quota, kind_default, committed, reserved, held, updated_at)
        SELECT ?, name, NULL, default_quota, ?, ?, ?, ? FROM resource_kinds WHERE name = ?
        ON CONFLICT (organization_id, kind)
        DO UPDATE SET committed = excluded.committed, reserved = excluded.reserved,
          held = excluded.held, updated_at = excluded.updated_at`,
      [organization, actual.committed, actual.reserved, actual.held, nowMs, kind],
    );
    if (actual.guaranteed !== undefined) {
      await tx.run(
        `UPDATE quota_counters SET guaranteed = ?, shortfall = ? WHERE organization_id = ? AND kind = ?`,
        [actual.guaranteed, actual.shortfall ?? 0, organization, kind],
      );
    }
  }
  if (found.length > 0) {
    appendJournal(context, {
      organization,
      project: null,
      action: 'counter.corrected',
      subject: null,
      changes: { corrections: found },
      // No deltas: the drift never went through the journal, so the journal already adds up
      // to the true values the counters are set back to. What was wrong is in `changes`.
      deltas: [],
    });
  }
  return found;
}

/**
 * Replays one organization's journal from revision 0 and compares the sums of its deltas with
 * the organization's counters and each project's, and checks that revisions have no gaps.
 * Reads in one snapshot.
 */
export async function replayJournal(
  tx: Executor,
  organization: string,
): Promise<{ entries: number; discrepancies: JournalDiscrepancy[] }> {
  const replayed = new Map<string, { committed: number; reserved: number; held: number }>();
  const discrepancies: JournalDiscrepancy[] = [];
  const add = (key: string, delta: { committed: number; reserved: number; held: number }) => {
    const sum = replayed.get(key) ?? { committed: 0, reserved: 0, held: 0 };
    sum.committed += delta.committed;
    sum.reserved += delta.reserved;
    sum.held += delta.held;
    replayed.set(key, sum);
  };
  let revision = 0;
  for (;;) {
    const page = await readJournal(tx, organization, revision, journalPageSizeMax);
    for (const entry of page) {
      if (entry.revision !== revision + 1) {
        discrepancies.push({ organization, kind: null, problem: `revision ${revision + 1} is missing` });
      }
      revision = entry.revision;
      for (const delta of entry.deltas) {
        add(`\u0000${delta.kind}`, delta);
        if (entry.project !== null) add(`${entry.project}\u0000${delta.kind}`, delta);
      }
    }
    if (page.length < journalPageSizeMax) break;
  }
  const stored = new Map<string, { committed: number; reserved: number; held: number }>();
  for (const row of await tx.all<SumRow>(`${storedSql} WHERE organization_id = ?`, [organization])) {
    stored.set(`\u0000${row.kind}`, countersOf(row));
  }
  for (const row of await tx.all<SumRow>(`${storedProjectSql} WHERE organization_id = ?`, [organization])) {
    stored.set(`${row.project_id}\u0000${row.kind}`, countersOf(row));
  }
  for (const key of [...new Set([...replayed.keys(), ...stored.keys()])].sort()) {
    const counters = stored.get(key) ?? countersOf(undefined);
    const journal = replayed.get(key) ?? countersOf(undefined);
    if (counters.committed !== journal.committed || counters.reserved !== journal.reserved || counters.held !== journal.held) {
      const [project, kind] = key.split('\u0000') as [string, string];
      discrepancies.push({
        organization,
        kind,
        ...(project === '' ? {} : { project }),
        problem:
          `counters committed=${counters.committed} reserved=${counters.reserved} held=${counters.held}, ` +
          `journal committed=${journal.committed} reserved=${journal.reserved} held=${journal.held}`,
      });
    }
  }
  return { entries: revision, discrepancies };
}
