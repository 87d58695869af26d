/**
 * The recount: recomputes every usage counter from the live allocations and pending holds and
 * compares it with the stored one (invariant 2). It reads in one snapshot, so a recount taken
 * under load reports no false drift. `repairOrganization` fixes what it finds with that
 * organization's counters locked, and journals the correction (stored and true values).
 */
import type { Executor } from '../store/store.js';
import type { WriteContext } from './context.js';
import { journalPageSizeMax } from '../domain/constants.js';
import { appendJournal, readJournal } from './journal.js';
import type { CounterDiscrepancy, JournalDiscrepancy } from './types.js';

interface SumRow {
  organization_id: string;
  kind: string;
  committed: number;
  reserved: number;
  held: number;
}

const storedSql = `SELECT organization_id, kind, committed, reserved, held FROM quota_counters`;

// Pending holds count as held (committed + reserved of their lines) until resolved, expired
// or not: a decision resolves expired holds before it counts, and so does the recount's
// caller when it repairs.
const actualSql = `SELECT a.organization_id, l.kind,
    CAST(SUM(CASE WHEN a.state = 'live' THEN l.committed ELSE 0 END) AS BIGINT) AS committed,
    CAST(SUM(CASE WHEN a.state = 'live' THEN l.reserved ELSE 0 END) AS BIGINT) AS reserved,
    CAST(SUM(CASE WHEN a.state = 'held' THEN l.committed + l.reserved ELSE 0 END) AS BIGINT) AS held
  FROM allocation_lines l JOIN allocations a ON a.id = l.allocation_id
  WHERE a.deleted_at IS NULL`;

export async function findDiscrepancies(
  tx: Executor,
  organization?: string,
): Promise<CounterDiscrepancy[]> {
  const filter = organization === undefined ? [] : [organization];
  const stored = await tx.all<SumRow>(
    storedSql + (organization === undefined ? '' : ' WHERE organization_id = ?'),
    filter,
  );
  const actual = await tx.all<SumRow>(
    actualSql +
      (organization === undefined ? '' : ' AND a.organization_id = ?') +
      ' GROUP BY a.organization_id, l.kind',
    filter,
  );
  return compare(stored, actual);
}

const countersOf = (row: SumRow | undefined) => ({
  committed: row?.committed ?? 0,
  reserved: row?.reserved ?? 0,
  held: row?.held ?? 0,
});

function compare(stored: SumRow[], actual: SumRow[]): CounterDiscrepancy[] {
  const key = (row: SumRow) => `${row.organization_id}\u0000${row.kind}`;
  const actualByKey = new Map(actual.map((row) => [key(row), row]));
  const discrepancies: CounterDiscrepancy[] = [];
  const report = (of: SumRow, storedRow: SumRow | undefined, actualRow: SumRow | undefined) => {
    const s = countersOf(storedRow);
    const a = countersOf(actualRow);
    if (s.committed !== a.committed || s.reserved !== a.reserved || s.held !== a.held) {
      discrepancies.push({ organization: of.organization_id, kind: of.kind, stored: s, actual: a });
    }
  };
  for (const row of stored) {
    report(row, row, actualByKey.get(key(row)));
    actualByKey.delete(key(row));
  }
  // Usage with no counter row at all.
  for (const row of actualByKey.values()) report(row, undefined, row);
  return discrepancies.sort((a, b) =>
    a.organization === b.organization
      ? a.kind.localeCompare(b.kind)
      : a.organization.localeCompare(b.organization),
  );
}

/** Locks one organization's counters, recounts them, writes the true values and journals. */
export async function repairOrganization(
  context: WriteContext,
  organization: string,
): Promise<CounterDiscrepancy[]> {
  const { tx, dialect, nowMs } = context;
  await tx.all(
    `SELECT kind FROM quota_counters WHERE organization_id = ? ORDER BY kind${dialect.lockRowsSuffix}`,
    [organization],
  );
  const found = await findDiscrepancies(tx, organization);
  for (const { kind, actual } of found) {
    await tx.run(
      `INSERT INTO quota_counters (organization_id, kind, quota, committed, reserved, held, updated_at)
        VALUES (?, ?, NULL, ?, ?, ?, ?)
        ON CONFLICT (organization_id, kind)
        DO UPDATE SET committed = excluded.committed, reserved = excluded.reserved,
          held = excluded.held, updated_at = excluded.updated_at`,
      [organization, kind, actual.committed, actual.reserved, actual.held, nowMs],
    );
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
 * the organization's counters, and checks that revisions have no gaps. Reads in one snapshot.
 */
export async function replayJournal(
  tx: Executor,
  organization: string,
): Promise<{ entries: number; discrepancies: JournalDiscrepancy[] }> {
  const replayed = new Map<string, { committed: number; reserved: number; held: number }>();
  const discrepancies: JournalDiscrepancy[] = [];
  let revision = 0;
  for (;;) {
    const page = await readJournal(tx, organization, revision, journalPageSizeMax);
    for (const entry of page) {
      if (entry.revision !== revision + 1) {
        discrepancies.push({ organization, kind: null, problem: `revision ${revision + 1} is missing` });
      }
      revision = entry.revision;
      for (const delta of entry.deltas) {
        const sum = replayed.get(delta.kind) ?? { committed: 0, reserved: 0, held: 0 };
        sum.committed += delta.committed;
        sum.reserved += delta.reserved;
        sum.held += delta.held;
        replayed.set(delta.kind, sum);
      }
    }
    if (page.length < journalPageSizeMax) break;
  }
  const stored = await tx.all<SumRow>(`${storedSql} WHERE organization_id = ?`, [organization]);
  const storedByKind = new Map(stored.map((row) => [row.kind, countersOf(row)]));
  for (const kind of new Set([...replayed.keys(), ...storedByKind.keys()])) {
    const counters = storedByKind.get(kind) ?? countersOf(undefined);
    const journal = replayed.get(kind) ?? countersOf(undefined);
    if (counters.committed !== journal.committed || counters.reserved !== journal.reserved || counters.held !== journal.held) {
      discrepancies.push({
        organization,
        kind,
        problem:
          `counters committed=${counters.committed} reserved=${counters.reserved} held=${counters.held}, ` +
          `journal committed=${journal.committed} reserved=${journal.reserved} held=${journal.held}`,
      });
    }
  }
  return { entries: revision, discrepancies };
}
