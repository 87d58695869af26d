/**
 * The checks, on a fresh ledger opened on the run's database after every server stopped:
 *
 * 1. The journal of each organization: revisions 1..N without a gap; each entry consistent
 *    with what came before (its subject's state, its `before` lines, its deltas); and after
 *    every entry, for every kind, committed + reserved + held ≤ the limit in force at that
 *    revision (the organization's quota as set by the `quota.set` entries so far, else the
 *    kind's default, else unlimited) — zero overcommit at every revision.
 * 2. The replay of every journal's deltas equals the counters (getQuotas), and the recount
 *    (`verifyCounters`) finds no counter that differs from the allocations.
 * 3. Every write a client saw acknowledged is there: a created allocation or hold exists with
 *    the acknowledged content and status, a confirmed hold is a live allocation with the
 *    confirmed lines, a delete or release is gone.
 */
import { AllotError, type Ledger } from '../../src/index.js';
import { byKind, sameLines, showLines, type Line, type Model, type Violations } from './model.js';
import { kindDefaults } from './tenancy.js';

type JournalEntry = Awaited<ReturnType<Ledger['readJournal']>>[number];

interface Counts {
  committed: number;
  reserved: number;
  held: number;
}

export interface CheckReport {
  journalEntries: number;
  entitiesChecked: number;
  entitiesUncertain: number;
}

/** Per kind: the change from `before` to `after` usage, without the kinds that do not move. */
function deltasOf(before: readonly Line[], beforeAs: 'live' | 'held', after: readonly Line[], afterAs: 'live' | 'held') {
  const byKindMap = new Map<string, Counts>();
  const add = (lines: readonly Line[], as: 'live' | 'held', sign: number) => {
    for (const line of lines) {
      const d = byKindMap.get(line.kind) ?? { committed: 0, reserved: 0, held: 0 };
      if (as === 'live') {
        d.committed += sign * line.committed;
        d.reserved += sign * line.reserved;
      } else {
        d.held += sign * (line.committed + line.reserved);
      }
      byKindMap.set(line.kind, d);
    }
  };
  add(before, beforeAs, -1);
  add(after, afterAs, 1);
  return new Map([...byKindMap].filter(([, d]) => d.committed !== 0 || d.reserved !== 0 || d.held !== 0));
}

function sameDeltas(expected: Map<string, Counts>, actual: JournalEntry['deltas']): boolean {
  const nonZero = actual.filter((d) => d.committed !== 0 || d.reserved !== 0 || d.held !== 0);
  if (nonZero.length !== expected.size) return false;
  return nonZero.every((d) => {
    const e = expected.get(d.kind);
    return e !== undefined && e.committed === d.committed && e.reserved === d.reserved && e.held === d.held;
  });
}

const showDeltas = (deltas: JournalEntry['deltas']) =>
  deltas.map((d) => `${d.kind} ${d.committed}/${d.reserved}/${d.held}`).join(', ') || 'none';

const linesIn = (value: unknown): Line[] | null =>
  Array.isArray(value)
    ? (value as Line[]).map(({ kind, committed, reserved }) => ({ kind, committed, reserved })).sort(byKind)
    : null;

async function readWholeJournal(ledger: Ledger, organization: string): Promise<JournalEntry[]> {
  const entries: JournalEntry[] = [];
  for (let after = 0; ; ) {
    const page = await ledger.readJournal(organization, after, 1000);
    entries.push(...page);
    if (page.length < 1000) return entries;
    after = page[page.length - 1]!.revision;
  }
}

/** Check 1 and 2 for one organization; returns how many entries it read. */
async function checkJournal(ledger: Ledger, organization: string, violations: Violations): Promise<number> {
  const entries = await readWholeJournal(ledger, organization);
  const usage = new Map<string, Counts>();
  const quota = new Map<string, number | null>();
  const subjects = new Map<string, { state: 'live' | 'held' | 'ended'; lines: Line[] }>();
  const overcommitted = new Map<string, number>();
  const where = (entry: JournalEntry) => `${organization} revision ${entry.revision} (${entry.action} ${entry.subject ?? ''})`;
  const inconsistent = (entry: JournalEntry, why: string) => violations.add('journal-consistency', `${where(entry)}: ${why}`);

  let expectedRevision = 1;
  for (const entry of entries) {
    if (entry.revision !== expectedRevision) {
      violations.add('journal-gap', `${organization}: revision ${entry.revision} follows ${expectedRevision - 1}`);
    }
    expectedRevision = entry.revision + 1;
    if (entry.organization !== organization) inconsistent(entry, `organization ${entry.organization}`);

    // The entry against the state its subject was left in.
    const changes = entry.changes as Record<string, unknown>;
    const subject = entry.subject === null ? undefined : subjects.get(entry.subject);
    const expectDeltas = (expected: Map<string, Counts>) => {
      if (!sameDeltas(expected, entry.deltas)) {
        inconsistent(entry, `deltas ${showDeltas(entry.deltas)} do not follow from its changes`);
      }
    };
    const expectSubject = (state: 'live' | 'held', before: unknown): Line[] | null => {
      if (subject === undefined || subject.state !== state) {
        inconsistent(entry, `its subject is ${subject?.state ?? 'unknown'}, not ${state}`);
        return linesIn(before);
      }
      const lines = linesIn(before);
      if (lines === null || !sameLines(lines, subject.lines)) {
        inconsistent(entry, `before ${lines ? showLines(lines) : '?'}, but the journal left ${showLines(subject.lines)}`);
      }
      return subject.lines;
    };
    const fresh = () => {
      if (entry.subject === null || subjects.has(entry.subject)) inconsistent(entry, 'its subject is not new');
    };
    switch (entry.action) {
      case 'quota.set': {
        if (entry.deltas.length > 0) inconsistent(entry, 'a quota change with deltas');
        for (const change of (changes.quotas ?? []) as { kind: string; before: number | null; after: number | null }[]) {
          if ((quota.get(change.kind) ?? null) !== change.before) {
            inconsistent(entry, `${change.kind} before ${change.before}, but the journal left ${quota.get(change.kind) ?? null}`);
          }
          quota.set(change.kind, change.after);
        }
        if (changes.force === true) inconsistent(entry, 'a forced quota (the load never forces)');
        break;
      }
      case 'allocation.created':
      case 'hold.created': {
        fresh();
        const hold = entry.action === 'hold.created';
        const lines = linesIn(hold ? changes.held : changes.after) ?? [];
        expectDeltas(deltasOf([], 'live', lines, hold ? 'held' : 'live'));
        subjects.set(entry.subject ?? '', { state: hold ? 'held' : 'live', lines });
        break;
      }
      case 'allocation.updated': {
        const before = expectSubject('live', changes.before) ?? [];
        const after = linesIn(changes.after) ?? [];
        expectDeltas(deltasOf(before, 'live', after, 'live'));
        subjects.set(entry.subject ?? '', { state: 'live', lines: after });
        break;
      }
      case 'allocation.deleted': {
        const before = expectSubject('live', changes.before) ?? [];
        expectDeltas(deltasOf(before, 'live', [], 'live'));
        subjects.set(entry.subject ?? '', { state: 'ended', lines: [] });
        break;
      }
      case 'hold.confirmed': {
        const held = expectSubject('held', changes.held) ?? [];
        const confirmed = linesIn(changes.confirmed) ?? [];
        expectDeltas(deltasOf(held, 'held', confirmed, 'live'));
        subjects.set(entry.subject ?? '', { state: 'live', lines: confirmed });
        break;
      }
      case 'hold.released':
      case 'hold.expired': {
        const held = expectSubject('held', changes.held) ?? [];
        expectDeltas(deltasOf(held, 'held', [], 'live'));
        subjects.set(entry.subject ?? '', { state: 'ended', lines: [] });
        break;
      }
      default:
        inconsistent(entry, 'an action the load never causes');
    }

    // Replay the deltas, then: no kind over its limit at this revision.
    for (const delta of entry.deltas) {
      const counts = usage.get(delta.kind) ?? { committed: 0, reserved: 0, held: 0 };
      counts.committed += delta.committed;
      counts.reserved += delta.reserved;
      counts.held += delta.held;
      usage.set(delta.kind, counts);
      if (counts.committed < 0 || counts.reserved < 0 || counts.held < 0) {
        inconsistent(entry, `${delta.kind} usage below zero`);
      }
    }
    for (const [kind, counts] of usage) {
      const limit = quota.get(kind) ?? kindDefaults.get(kind) ?? null;
      const used = counts.committed + counts.reserved + counts.held;
      if (limit !== null && used > limit) {
        const seen = overcommitted.get(kind) ?? 0;
        overcommitted.set(kind, seen + 1);
        if (seen === 0) {
          violations.add(
            'overcommit',
            `${where(entry)}: ${kind} used ${used} (committed ${counts.committed}, reserved ` +
              `${counts.reserved}, held ${counts.held}) > limit ${limit}`,
          );
        }
      }
    }
  }
  for (const [kind, times] of overcommitted) {
    if (times > 1) violations.add('overcommit', `${organization}: ${kind} was over its limit at ${times} revisions in all`);
  }

  // The replay against the counters.
  for (const row of await ledger.getQuotas(organization)) {
    const replayed = usage.get(row.kind) ?? { committed: 0, reserved: 0, held: 0 };
    if (replayed.committed !== row.committed || replayed.reserved !== row.reserved || replayed.held !== row.held) {
      violations.add(
        'replay-differs',
        `${organization} ${row.kind}: counters ${row.committed}/${row.reserved}/${row.held}, ` +
          `journal replay ${replayed.committed}/${replayed.reserved}/${replayed.held} (committed/reserved/held)`,
      );
    }
  }
  return entries.length;
}

async function orNotFound<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof AllotError && error.code === 'not-found') return null;
    throw error;
  }
}

/** Check 3: every acknowledged write is there, every acknowledged delete or release gone. */
async function checkAcknowledged(ledger: Ledger, model: Model, violations: Violations, report: CheckReport) {
  for (const entity of model.entities.values()) {
    if (entity.uncertain) {
      report.entitiesUncertain += 1;
      continue;
    }
    report.entitiesChecked += 1;
    const { organization, project, id } = entity;
    const name = `${entity.wasHold ? 'hold' : 'allocation'} ${id} in ${organization}/${project}` +
      `${entity.learntAfterwards ? ' (answer learnt after the run)' : ''}`;
    const allocation = await orNotFound(ledger.getAllocation(organization, project, id));
    const hold = entity.wasHold ? await orNotFound(ledger.getHold(organization, project, id)) : null;
    const lost = (why: string) => violations.add('acknowledged-write-lost', `${name}: ${why}`);
    const expectHold = (status: string) => {
      if (hold === null) lost(`the hold is not found (expected ${status})`);
      else if (hold.status !== status) lost(`the hold is ${hold.status}, expected ${status}`);
    };
    switch (entity.status) {
      case 'live':
        if (allocation === null) {
          lost('acknowledged, never acknowledged as deleted, and not found');
          break;
        }
        if (allocation.id !== id) lost(`read back with id ${allocation.id}`);
        if (!sameLines(allocation.allocations, entity.lines)) {
          lost(`allocations ${showLines(allocation.allocations)}, last acknowledged ${showLines(entity.lines)}`);
        }
        if (allocation.resource.kind !== entity.resource.kind || allocation.resource.id !== entity.resource.id) {
          lost(`resource ${allocation.resource.kind}/${allocation.resource.id}, acknowledged ${entity.resource.kind}/${entity.resource.id}`);
        }
        if (entity.wasHold) expectHold('confirmed');
        break;
      case 'deleted':
        if (allocation !== null) violations.add('acknowledged-delete-undone', `${name}: deleted, but still found`);
        if (entity.wasHold) expectHold('confirmed');
        break;
      case 'pending':
        // Nobody confirmed or released it: by now it has expired (and been swept).
        if (allocation !== null) lost('never confirmed, yet an allocation');
        expectHold('expired');
        if (hold !== null && !sameLines(hold.allocations, entity.lines)) {
          lost(`holds ${showLines(hold.allocations)}, acknowledged ${showLines(entity.lines)}`);
        }
        break;
      case 'released':
      case 'expired':
        if (allocation !== null) violations.add('acknowledged-delete-undone', `${name}: ${entity.status}, but an allocation`);
        expectHold(entity.status);
        break;
    }
  }
}

export async function checkBooks(
  ledger: Ledger,
  organizations: readonly string[],
  model: Model,
  violations: Violations,
): Promise<CheckReport> {
  const report: CheckReport = { journalEntries: 0, entitiesChecked: 0, entitiesUncertain: 0 };
  for (const organization of organizations) {
    report.journalEntries += await checkJournal(ledger, organization, violations);
  }
  for (const discrepancy of await ledger.verifyCounters()) {
    const { stored: s, actual: a } = discrepancy;
    violations.add(
      'counter-recount',
      `${discrepancy.organization} ${discrepancy.kind}: counter ${s.committed}/${s.reserved}/${s.held}, ` +
        `recount ${a.committed}/${a.reserved}/${a.held} (committed/reserved/held)`,
    );
  }
  await checkAcknowledged(ledger, model, violations, report);
  return report;
}
