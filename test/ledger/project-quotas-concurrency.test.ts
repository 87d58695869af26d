// Goal: project quotas hold under any interleaving: no project takes another project's
// guarantee, no project goes past its cap, no organization past its quota, the guarantees never
// add up to more than the quota, and a project deleted with cascade keeps nothing — with
// decisions, guarantee and cap changes, quota cuts and deletions racing each other.
// Method: two Ledger instances on one database (two connection pools on PostgreSQL, as two
// processes would have; on SQLite they share the file's one connection, as in
// concurrency.test.ts) race many operations; each scenario is built so the outcome is exact
// (how many creates pass, which level refuses the rest, with which numbers), and a mistake in
// the atomicity of check and write would change a count. Snapshot reads of the counters taken
// in the middle of the races check the invariants while they run; afterwards the ledger's own
// reads, a model of the successful operations, the recount (verifyCounters) and the journal
// replay (verifyJournal) agree, and replaying the journal entry by entry shows that no
// committed state, however short-lived, broke a project quota.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Executor, type Ledger, type LineInput, type Violation } from '../../src/index.js';
import type { ErrorCode } from '../../src/domain/errors.js';
import type { JournalEntry } from '../../src/ledger/journal/journal.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

const holdTtlSeconds = 3600;

const gpus = (resourceId: string, committed = 1, reserved = 0) => ({
  resource: { kind: 'server', id: resourceId },
  allocations: [{ kind: 'gpus', committed, reserved }],
});

const gpusOf = <T extends { kind: string }>(items: T[]): T => items.find((item) => item.kind === 'gpus')!;
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
const shortfallOf = (guaranteed: number, used: number) => Math.max(0, guaranteed - used);

/** The AllotError of a rejection; anything else fails the test with its own message. */
function allotErrorOf(result: PromiseSettledResult<unknown>): AllotError {
  if (result.status !== 'rejected') throw new Error('expected a refusal, got a success');
  if (!(result.reason instanceof AllotError)) throw result.reason;
  return result.reason;
}

function violationsOf(result: PromiseSettledResult<unknown>): Violation[] {
  const error = allotErrorOf(result);
  expect(error.code).toBe('quota-exceeded');
  return error.extensions.violations ?? [];
}

/** Deterministic pseudo-random numbers, so a failing interleaving's inputs can be replayed. */
function mulberry32(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Books {
  organization: { limit: number; used: number; guaranteed: number; shortfall: number };
  projects: { project: string; cap: number | null; guaranteed: number; used: number }[];
}

/** The organization's and every project's counter of one kind, read in one snapshot. */
function booksOf(ledger: Ledger, organization: string, kind: string): Promise<Books> {
  return ledger.store.transaction(
    async (tx: Executor) => {
      const row = await tx.get<{
        quota: number | null;
        kind_default: number | null;
        used: number;
        guaranteed: number;
        shortfall: number;
      }>(
        `SELECT quota, kind_default, committed + reserved + held AS used, guaranteed, shortfall
          FROM quota_counters WHERE organization_id = ? AND kind = ?`,
        [organization, kind],
      );
      const projects = await tx.all<{ project: string; cap: number | null; guaranteed: number; used: number }>(
        `SELECT project_id AS project, cap, guaranteed, committed + reserved + held AS used
          FROM project_counters WHERE organization_id = ? AND kind = ? ORDER BY project_id`,
        [organization, kind],
      );
      const limit = row ? (row.quota ?? row.kind_default ?? Number.MAX_SAFE_INTEGER) : 0;
      return {
        organization: {
          limit: Number(limit),
          used: Number(row?.used ?? 0),
          guaranteed: Number(row?.guaranteed ?? 0),
          shortfall: Number(row?.shortfall ?? 0),
        },
        projects: projects.map((p) => ({
          project: p.project,
          cap: p.cap === null ? null : Number(p.cap),
          guaranteed: Number(p.guaranteed),
          used: Number(p.used),
        })),
      };
    },
    { readOnly: true, snapshot: true },
  );
}

/** The invariants one snapshot of the counters must satisfy (no forced change anywhere). */
function expectBooksConsistent(books: Books) {
  const { organization: org, projects } = books;
  const seen = JSON.stringify(books);
  expect(org.used, seen).toBeLessThanOrEqual(org.limit);
  expect(sum(projects.map((p) => p.used)), seen).toBe(org.used);
  expect(sum(projects.map((p) => p.guaranteed)), seen).toBe(org.guaranteed);
  expect(org.guaranteed, seen).toBeLessThanOrEqual(org.limit);
  expect(org.shortfall, seen).toBe(sum(projects.map((p) => shortfallOf(p.guaranteed, p.used))));
  expect(org.used + org.shortfall, seen).toBeLessThanOrEqual(org.limit);
  for (const p of projects) if (p.cap !== null) expect(p.used, seen).toBeLessThanOrEqual(p.cap);
}

/**
 * Runs an in-race check without leaving its failure unhandled while the race is awaited;
 * `expectSamplesPassed` rethrows the first failure afterwards.
 */
function sampling(check: () => Promise<void>): Promise<unknown> {
  return check().then(
    () => undefined,
    (error: unknown) => error ?? new Error('sample failed'),
  );
}

async function expectSamplesPassed(samples: Promise<unknown>[]) {
  const failures = (await Promise.all(samples)).filter((failure) => failure !== undefined);
  if (failures.length > 0) throw failures[0];
}

/**
 * The invariants from the ledger's own reads, per kind: usage within the quota, the guarantees'
 * sum within the quota, usage plus what the guarantees keep back within the quota, every
 * project within its cap, and the derived numbers (freeForAnyProject, available) as specified.
 */
async function expectProjectQuotasHold(ledger: Ledger, organization: string, projects: string[]) {
  const set = await ledger.getQuotaSet(organization);
  const projectQuotas = await Promise.all(projects.map((project) => ledger.getProjectQuotaSet(organization, project)));
  for (const quota of set.quotas) {
    const perProject = projectQuotas.map((projectQuota) => projectQuota.quotas.find((q) => q.kind === quota.kind)!);
    expect(quota.quantity).not.toBeNull();
    const limit = quota.quantity!;
    const shortfall = sum(perProject.map((p) => shortfallOf(p.guaranteed, p.used)));
    expect(quota.used).toBe(sum(perProject.map((p) => p.used)));
    expect(quota.guaranteed).toBe(sum(perProject.map((p) => p.guaranteed)));
    expect(quota.used).toBeLessThanOrEqual(limit);
    expect(quota.overLimit).toBe(false);
    expect(quota.guaranteed).toBeLessThanOrEqual(limit);
    expect(quota.used + shortfall).toBeLessThanOrEqual(limit);
    expect(quota.freeForAnyProject).toBe(Math.max(0, limit - quota.used - shortfall));
    for (const p of perProject) {
      expect(p.used).toBe(p.committed + p.reserved + p.held);
      if (p.cap !== null) expect(p.used).toBeLessThanOrEqual(p.cap);
      expect(p.overCap).toBe(false);
      const keptBack = shortfall - shortfallOf(p.guaranteed, p.used);
      const byCap = p.cap === null ? Number.POSITIVE_INFINITY : p.cap - p.used;
      expect(p.available).toBe(Math.max(0, Math.min(limit - quota.used - keptBack, byCap)));
    }
  }
}

async function journalOf(ledger: Ledger, organization: string, after = 0): Promise<JournalEntry[]> {
  const entries: JournalEntry[] = [];
  for (;;) {
    const page = await ledger.readJournal(organization, after, 1000);
    entries.push(...page);
    if (page.length < 1000) return entries;
    after = page[page.length - 1]!.revision;
  }
}

/**
 * Replays an organization's journal (its revisions are in commit order: each change takes the
 * next revision under the organization's row lock, held to commit) and checks the project quota
 * invariants after every entry, so a state that was broken only for a moment is caught too.
 * Returns one line per broken invariant (empty: every committed state was within bounds).
 */
function brokenStates(entries: JournalEntry[], kindDefault: (kind: string) => number | null): string[] {
  const quota = new Map<string, number | null>();
  const projectQuota = new Map<string, { cap: number | null; guaranteed: number }>();
  const used = new Map<string, number>();
  const key = (project: string, kind: string) => `${project}\u0000${kind}`;
  const limitOf = (kind: string) => (quota.has(kind) ? quota.get(kind)! : null) ?? kindDefault(kind) ?? Number.MAX_SAFE_INTEGER;
  const broken: string[] = [];
  for (const entry of entries) {
    const touched = new Set<string>();
    if (entry.action === 'quota.set') {
      for (const change of entry.changes.quotas as { kind: string; after: number | null }[]) {
        quota.set(change.kind, change.after);
        touched.add(change.kind);
      }
    } else if (entry.action === 'project-quota.set') {
      for (const change of entry.changes.quotas as { kind: string; after: { cap: number | null; guaranteed: number } }[]) {
        projectQuota.set(key(entry.project!, change.kind), change.after);
        touched.add(change.kind);
      }
    } else if (entry.action === 'project.deleted') {
      for (const k of [...projectQuota.keys()]) if (k.startsWith(`${entry.project}\u0000`)) projectQuota.delete(k);
    }
    for (const delta of entry.deltas) {
      const k = key(entry.project!, delta.kind);
      used.set(k, (used.get(k) ?? 0) + delta.committed + delta.reserved + delta.held);
      touched.add(delta.kind);
    }
    for (const kind of touched) {
      const limit = limitOf(kind);
      let organizationUsed = 0;
      let guaranteed = 0;
      let shortfall = 0;
      const projects = new Set(
        [...used.keys(), ...projectQuota.keys()].filter((k) => k.endsWith(`\u0000${kind}`)).map((k) => k.split('\u0000')[0]!),
      );
      for (const project of projects) {
        const u = used.get(key(project, kind)) ?? 0;
        const e = projectQuota.get(key(project, kind)) ?? { cap: null, guaranteed: 0 };
        organizationUsed += u;
        guaranteed += e.guaranteed;
        shortfall += shortfallOf(e.guaranteed, u);
        if (e.cap !== null && u > e.cap) {
          broken.push(`revision ${entry.revision} (${entry.action}): ${project} uses ${u} ${kind} > cap ${e.cap}`);
        }
      }
      const at = `revision ${entry.revision} (${entry.action} ${entry.project ?? ''} ${JSON.stringify(entry.changes)})`;
      if (organizationUsed > limit) broken.push(`${at}: ${kind} used ${organizationUsed} > quota ${limit}`);
      if (guaranteed > limit) broken.push(`${at}: ${kind} guaranteed ${guaranteed} > quota ${limit}`);
      if (organizationUsed + shortfall > limit) {
        broken.push(`${at}: ${kind} used ${organizationUsed} + kept back ${shortfall} > quota ${limit}`);
      }
    }
  }
  return broken;
}

async function lastRevision(ledger: Ledger, organization: string): Promise<number> {
  const entries = await journalOf(ledger, organization);
  return entries.length === 0 ? 0 : entries[entries.length - 1]!.revision;
}

describe.each(engines)('project quotas under concurrency on %s', (engine) => {
  let database: TestDatabase;
  let ledgers: Ledger[] = [];
  const on = (i: number) => ledgers[i % ledgers.length]!;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    // Two ledgers, two connection pools on PostgreSQL (as many connections as
    // concurrency.test.ts takes, so parallel test files stay within the server's limit).
    ledgers = [await openLedger({ db: database.url })];
    ledgers.push(await openLedger({ db: database.url }));
    await ledgers[0]!.putKind('gpus', { displayName: 'GPUs', default: 0 });
    await ledgers[1]!.putKind('cpus', { displayName: 'CPUs', default: 0 });
  });

  afterAll(async () => {
    for (const ledger of ledgers) await ledger.close();
    await database?.drop();
  });

  it('keeps a 30-unit guarantee for its project while 7 projects race for the last units of 100', async () => {
    const organization = 'race';
    const guarded = 'pg';
    const others = ['pa', 'pb', 'pc', 'pd', 'pe', 'pf', 'ph'];
    const [first] = ledgers as [Ledger];
    await first.putOrganization(organization, {});
    for (const project of [...others, guarded]) await first.putProject(organization, project, {});
    await first.setQuotas(organization, [{ kind: 'gpus', quantity: 100 }]);
    await first.setProjectQuotaSet(organization, guarded, [{ kind: 'gpus', guaranteed: 30 }]);
    for (let i = 0; i < 10; i += 1) await first.createAllocation(organization, guarded, gpus(`seed-${i}`));

    // 290 one-unit creates: 10 by the guarded project (from 10 to 20, within its guarantee),
    // 280 by the others, who together may use at most 100 - 30 = 70 while the guarded project
    // uses at most 30. Snapshot checks are interleaved with the creates.
    const creates: { project: string; result: Promise<unknown> }[] = [];
    const samples: Promise<unknown>[] = [];
    const sample = async (i: number) => {
      const books = await booksOf(on(i + 1), organization, 'gpus');
      expectBooksConsistent(books);
      const guardedUsed = books.projects.find((p) => p.project === guarded)!.used;
      expect(books.organization.guaranteed).toBe(30);
      expect(books.organization.used - guardedUsed).toBeLessThanOrEqual(100 - Math.max(30, guardedUsed));
      const quota = gpusOf((await on(i + 2).getQuotaSet(organization)).quotas);
      expect(quota.used).toBeLessThanOrEqual(quota.quantity!);
      expect(quota.guaranteed).toBe(30);
    };
    for (let i = 0; i < 290; i += 1) {
      const project = i % 29 === 0 ? guarded : others[i % others.length]!;
      creates.push({ project, result: on(i).createAllocation(organization, project, gpus(`r-${i}`)) });
      if (i % 20 === 10) samples.push(sampling(() => sample(i)));
    }
    const results = await Promise.allSettled(creates.map((c) => c.result));
    await expectSamplesPassed(samples);
    expect(samples.length).toBeGreaterThan(10);

    const guardedResults = results.filter((_, i) => creates[i]!.project === guarded);
    const otherResults = results.filter((_, i) => creates[i]!.project !== guarded);
    expect(guardedResults).toHaveLength(10);
    expect(guardedResults.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(otherResults.filter((r) => r.status === 'fulfilled')).toHaveLength(70);
    const denied = otherResults.filter((r) => r.status === 'rejected');
    expect(denied).toHaveLength(210);
    for (const result of denied) {
      // The organization had room (at most 90 used), the guarantee refused: the others used
      // 70, so the organization's usage equals its quota less what the guarantee keeps back.
      const violations = violationsOf(result);
      expect(violations).toHaveLength(1);
      const [violation] = violations as [Violation];
      expect(violation).toMatchObject({ kind: 'gpus', scope: 'guarantees', requested: 1 });
      expect(violation.used).toBe(violation.limit);
      expect(violation.limit).toBeGreaterThanOrEqual(80);
      expect(violation.limit).toBeLessThanOrEqual(90);
    }

    expect(gpusOf(await first.getQuotas(organization))).toMatchObject({ used: 90, free: 10, guaranteed: 30, freeForAnyProject: 0, overLimit: false });
    const projectQuotas = await Promise.all(others.map((p) => first.getProjectQuotaSet(organization, p)));
    expect(sum(projectQuotas.map((e) => e.quotas.find((q) => q.kind === 'gpus')!.used))).toBe(70);
    for (const projectQuota of projectQuotas) expect(projectQuota.quotas.find((q) => q.kind === 'gpus')!.available).toBe(0);
    const guardedProjectQuota = await first.getProjectQuotaSet(organization, guarded);
    expect(guardedProjectQuota.quotas.find((q) => q.kind === 'gpus')).toMatchObject({
      used: 20,
      guaranteed: 30,
      available: 10,
    });

    // After the race, the rest of the guarantee is still there: the guarded project's 10
    // creates all pass, even while 60 creates of the others race them; the others get none.
    const second: { project: string; result: Promise<unknown> }[] = [];
    for (let i = 0; i < 70; i += 1) {
      const project = i % 7 === 3 ? guarded : others[i % others.length]!;
      second.push({ project, result: on(i).createAllocation(organization, project, gpus(`late-${i}`)) });
    }
    const late = await Promise.allSettled(second.map((c) => c.result));
    const lateGuarded = late.filter((_, i) => second[i]!.project === guarded);
    const lateOthers = late.filter((_, i) => second[i]!.project !== guarded);
    expect(lateGuarded).toHaveLength(10);
    expect(lateGuarded.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(lateOthers).toHaveLength(60);
    for (const result of lateOthers) {
      const violations = violationsOf(result);
      expect(violations).toHaveLength(1);
      const [violation] = violations as [Violation];
      expect(violation.kind).toBe('gpus');
      expect(violation.requested).toBe(1);
      if (violation.scope === 'organization') {
        expect(violation).toMatchObject({ used: 100, limit: 100 });
      } else {
        expect(violation.scope).toBe('guarantees');
        expect(violation.used).toBe(violation.limit);
      }
    }

    expect(gpusOf(await first.getQuotas(organization))).toMatchObject({ used: 100, free: 0, freeForAnyProject: 0 });
    expect((await first.getProjectQuotaSet(organization, guarded)).quotas.find((q) => q.kind === 'gpus')).toMatchObject({
      used: 30,
      available: 0,
    });
    // Now the organization itself is full: both the guarded project and the others are refused
    // at the organization level.
    for (const project of [guarded, others[0]!]) {
      const [refusal] = await Promise.allSettled([first.createAllocation(organization, project, gpus(`full-${project}`))]);
      expect(violationsOf(refusal!)).toEqual([{ kind: 'gpus', scope: 'organization', requested: 1, used: 100, limit: 100 }]);
    }
    await expectProjectQuotasHold(first, organization, [...others, guarded]);
    expect(await first.verifyCounters()).toEqual([]);
    expect(await first.verifyJournal()).toEqual([]);
    // No committed state, however short-lived, broke a project quota (kind defaults are 0 here).
    expect(brokenStates(await journalOf(first, organization), () => 0)).toEqual([]);
  });

  it('grants exactly the cap of racing creates in capped projects, rolling back every kind of a refused one', async () => {
    const organization = 'capped';
    const [first] = ledgers as [Ledger];
    await first.putOrganization(organization, {});
    for (const project of ['c1', 'c2', 'c3']) await first.putProject(organization, project, {});
    await first.setQuotas(organization, [
      { kind: 'gpus', quantity: 100 },
      { kind: 'cpus', quantity: 1000 },
    ]);
    await first.setProjectQuotaSet(organization, 'c1', [{ kind: 'gpus', cap: 25 }]);
    await first.setProjectQuotaSet(organization, 'c2', [{ kind: 'gpus', cap: 30, guaranteed: 5 }]);
    await first.setProjectQuotaSet(organization, 'c3', [{ kind: 'cpus', cap: 20 }]);

    const creates: { project: string; result: Promise<unknown> }[] = [];
    const samples: Promise<unknown>[] = [];
    for (let i = 0; i < 240; i += 1) {
      const project = ['c1', 'c2', 'c3'][i % 3]!;
      const input =
        project === 'c3'
          ? {
              resource: { kind: 'server', id: `cap-${i}` },
              allocations: [
                { kind: 'cpus', committed: 1, reserved: 1 },
                { kind: 'gpus', committed: 1, reserved: 0 },
              ],
            }
          : gpus(`cap-${i}`);
      creates.push({ project, result: on(i).createAllocation(organization, project, input) });
      if (i % 30 === 15) {
        samples.push(
          sampling(async () => {
            for (const kind of ['cpus', 'gpus']) expectBooksConsistent(await booksOf(on(i + 1), organization, kind));
          }),
        );
      }
    }
    const results = await Promise.allSettled(creates.map((c) => c.result));
    await expectSamplesPassed(samples);
    const of = (project: string) => results.filter((_, i) => creates[i]!.project === project);

    const expected: Record<string, { granted: number; violation: Violation }> = {
      c1: { granted: 25, violation: { kind: 'gpus', scope: 'project', requested: 1, used: 25, limit: 25 } },
      c2: { granted: 30, violation: { kind: 'gpus', scope: 'project', requested: 1, used: 30, limit: 30 } },
      c3: { granted: 10, violation: { kind: 'cpus', scope: 'project', requested: 2, used: 20, limit: 20 } },
    };
    for (const [project, { granted, violation }] of Object.entries(expected)) {
      const outcomes = of(project);
      expect(outcomes).toHaveLength(80);
      expect(outcomes.filter((r) => r.status === 'fulfilled')).toHaveLength(granted);
      for (const result of outcomes.filter((r) => r.status === 'rejected')) {
        expect(violationsOf(result)).toEqual([violation]);
      }
    }
    const usage = async (project: string, kind: string) =>
      (await first.getProjectQuotaSet(organization, project)).quotas.find((q) => q.kind === kind)!;
    expect(await usage('c1', 'gpus')).toMatchObject({ cap: 25, used: 25, committed: 25, available: 0, overCap: false });
    expect(await usage('c2', 'gpus')).toMatchObject({ cap: 30, guaranteed: 5, used: 30, available: 0, overCap: false });
    expect(await usage('c3', 'cpus')).toMatchObject({ cap: 20, used: 20, committed: 10, reserved: 10, available: 0 });
    // A refused create of c3 moved neither kind: its gpus are exactly the 10 granted.
    expect(await usage('c3', 'gpus')).toMatchObject({ cap: null, used: 10 });
    const quotas = await first.getQuotas(organization);
    expect(quotas.find((q) => q.kind === 'gpus')).toMatchObject({ used: 65, guaranteed: 5 });
    expect(quotas.find((q) => q.kind === 'cpus')).toMatchObject({ used: 20 });
    const listed = await first.listAllocations(organization, 'c1', { limit: 1000 });
    expect(listed.items).toHaveLength(25);
    await expectProjectQuotasHold(first, organization, ['c1', 'c2', 'c3']);
    expect(await first.verifyCounters()).toEqual([]);
    expect(await first.verifyJournal()).toEqual([]);
    // No committed state, however short-lived, broke a project quota (kind defaults are 0 here).
    expect(brokenStates(await journalOf(first, organization), () => 0)).toEqual([]);
  });

  it('keeps every project quota invariant while guarantees, caps and quota cuts race with decisions', async () => {
    const organization = 'mixed';
    const projects = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
    const kinds = ['cpus', 'gpus'] as const;
    const [first] = ledgers as [Ledger];
    await first.putOrganization(organization, {});
    for (const project of projects) await first.putProject(organization, project, {});
    await first.setQuotas(organization, [
      { kind: 'gpus', quantity: 60 },
      { kind: 'cpus', quantity: 120 },
    ]);

    type Usage = { committed: number; reserved: number; held: number };
    type Booked = { project: string; id: string; lines: { kind: string; committed: number; reserved: number }[] };
    const model = new Map<string, Usage>();
    const usageIn = (project: string, kind: string) => {
      const key = `${project}/${kind}`;
      let usage = model.get(key);
      if (!usage) model.set(key, (usage = { committed: 0, reserved: 0, held: 0 }));
      return usage;
    };
    const live: Booked[] = [];
    const pending: Booked[] = [];
    const random = mulberry32(20260101);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    const takeRandom = <T>(items: T[]) => items.splice(Math.floor(random() * items.length), 1)[0]!;
    const refusalsSeen = new Map<string, number>();
    const successesSeen = new Map<string, number>();

    for (let round = 0; round < 6; round += 1) {
      type Op = {
        name: string;
        result: Promise<unknown>;
        allowed: ErrorCode[];
        onSuccess?: (value: unknown) => void;
      };
      const ops: Op[] = [];
      const samples: Promise<unknown>[] = [];
      const projectQuotaRefusals: ErrorCode[] = ['quota-below-usage', 'guarantee-unavailable', 'guarantees-exceed-quota'];
      for (let i = 0; i < 90; i += 1) {
        const ledger = on(i + round);
        const project = pick(projects);
        const roll = random();
        const lines: Booked['lines'] = [];
        const gpuCommitted = 1 + Math.floor(random() * 3);
        lines.push({ kind: 'gpus', committed: gpuCommitted, reserved: Math.floor(random() * 2) });
        if (random() < 0.5) lines.push({ kind: 'cpus', committed: 1 + Math.floor(random() * 4), reserved: Math.floor(random() * 3) });
        const input = { resource: { kind: 'server', id: `x-${round}-${i}` }, allocations: lines as LineInput[] };
        if (roll < 0.32) {
          ops.push({
            name: 'create',
            result: ledger.createAllocation(organization, project, input),
            allowed: ['quota-exceeded'],
            onSuccess: (value) => {
              const id = (value as { id: string }).id;
              live.push({ project, id, lines });
              for (const line of lines) {
                usageIn(project, line.kind).committed += line.committed;
                usageIn(project, line.kind).reserved += line.reserved;
              }
            },
          });
        } else if (roll < 0.46) {
          ops.push({
            name: 'hold',
            result: ledger.createHold(organization, project, { ...input, ttlSeconds: holdTtlSeconds }),
            allowed: ['quota-exceeded'],
            onSuccess: (value) => {
              const id = (value as { id: string }).id;
              pending.push({ project, id, lines });
              for (const line of lines) usageIn(project, line.kind).held += line.committed + line.reserved;
            },
          });
        } else if (roll < 0.54 && live.length > 0) {
          const target = takeRandom(live);
          ops.push({
            name: 'delete',
            result: ledger.deleteAllocation(organization, target.project, target.id),
            allowed: [],
            onSuccess: (value) => {
              expect(value).toEqual({ deleted: true });
              for (const line of target.lines) {
                usageIn(target.project, line.kind).committed -= line.committed;
                usageIn(target.project, line.kind).reserved -= line.reserved;
              }
            },
          });
        } else if (roll < 0.62 && pending.length > 0) {
          const target = takeRandom(pending);
          const confirm = random() < 0.5;
          ops.push({
            name: confirm ? 'confirm' : 'release',
            result: confirm
              ? ledger.confirmHold(organization, target.project, target.id)
              : ledger.releaseHold(organization, target.project, target.id),
            allowed: [],
            onSuccess: () => {
              for (const line of target.lines) {
                const usage = usageIn(target.project, line.kind);
                usage.held -= line.committed + line.reserved;
                if (confirm) {
                  usage.committed += line.committed;
                  usage.reserved += line.reserved;
                }
              }
              if (confirm) live.push(target);
            },
          });
        } else if (roll < 0.85) {
          const kind = pick(kinds);
          const scale = kind === 'cpus' ? 2 : 1;
          const cap = random() < 0.4 ? null : (4 + Math.floor(random() * 36)) * scale;
          const guaranteed = Math.min(Math.floor(random() * 22) * scale, cap ?? Number.MAX_SAFE_INTEGER);
          ops.push({
            name: 'project-quota',
            result: ledger.setProjectQuotaSet(organization, project, [{ kind, cap, guaranteed }]),
            allowed: projectQuotaRefusals,
          });
        } else {
          const kind = pick(kinds);
          const quantity = kind === 'gpus' ? 30 + Math.floor(random() * 60) : 60 + Math.floor(random() * 120);
          ops.push({
            name: 'quota',
            result: ledger.setQuotas(organization, [{ kind, quantity }]),
            allowed: projectQuotaRefusals,
          });
        }
        if (i % 15 === 7) {
          samples.push(
            sampling(async () => {
              for (const kind of kinds) expectBooksConsistent(await booksOf(on(i + 1), organization, kind));
              for (const quota of await on(i + 2).getQuotas(organization)) {
                expect(quota.used).toBeLessThanOrEqual(quota.quantity!);
                expect(quota.guaranteed).toBeLessThanOrEqual(quota.quantity!);
              }
            }),
          );
        }
      }
      const results = await Promise.allSettled(ops.map((op) => op.result));
      await expectSamplesPassed(samples);
      results.forEach((result, i) => {
        const op = ops[i]!;
        if (result.status === 'fulfilled') {
          successesSeen.set(op.name, (successesSeen.get(op.name) ?? 0) + 1);
          op.onSuccess?.(result.value);
          return;
        }
        const error = allotErrorOf(result);
        expect(op.allowed, `${op.name} refused with ${error.code}: ${error.detail}`).toContain(error.code);
        refusalsSeen.set(error.code, (refusalsSeen.get(error.code) ?? 0) + 1);
        if (error.code === 'quota-exceeded') {
          // What a denial reports is true of the numbers it names.
          for (const v of error.extensions.violations ?? []) expect(v.used + v.requested).toBeGreaterThan(v.limit);
          expect(error.extensions.violations?.length).toBeGreaterThan(0);
        }
      });

      // Quiescent: the ledger's reads satisfy every invariant, and each project's usage is
      // exactly what the successful operations add up to (no refused change left a trace).
      await expectProjectQuotasHold(on(round), organization, projects);
      for (const project of projects) {
        const projectQuota = await on(round + 1).getProjectQuotaSet(organization, project);
        for (const kind of kinds) {
          const quota = projectQuota.quotas.find((q) => q.kind === kind)!;
          expect(
            { committed: quota.committed, reserved: quota.reserved, held: quota.held },
            `${project}/${kind} after round ${round}`,
          ).toEqual(usageIn(project, kind));
        }
      }
      expect(await on(round + 2).verifyCounters()).toEqual([]);
    }
    // The races really exercised both sides of each rule.
    expect(successesSeen.get('create') ?? 0).toBeGreaterThan(0);
    expect(successesSeen.get('project-quota') ?? 0).toBeGreaterThan(0);
    expect(successesSeen.get('quota') ?? 0).toBeGreaterThan(0);
    expect(refusalsSeen.get('quota-exceeded') ?? 0).toBeGreaterThan(0);
    expect(await ledgers[0]!.verifyJournal()).toEqual([]);
    // No committed state, however short-lived, broke a project quota (kind defaults are 0 here).
    expect(brokenStates(await journalOf(ledgers[0]!, organization), () => 0)).toEqual([]);
  });

  it('deletes a project with cascade while creates, holds and project quota changes race in it', async () => {
    const organization = 'del';
    const doomed = 'doomed';
    const bystander = 'bystander';
    const [first] = ledgers as [Ledger];
    await first.putOrganization(organization, {});
    await first.putProject(organization, bystander, {});
    await first.setQuotas(organization, [{ kind: 'gpus', quantity: 200 }]);
    let doomedGranted = 0;
    let doomedNotFound = 0;

    for (const [round, deleteAt] of [15, 50, 85].entries()) {
      // A fresh (or revived) project: nothing of the previous round's is left in it.
      const put = await first.putProject(organization, doomed, {});
      expect(put.created).toBe(true);
      expect((await first.listAllocations(organization, doomed, { limit: 1000 })).items).toEqual([]);
      expect((await first.listHolds(organization, doomed, { limit: 1000 })).items).toEqual([]);
      for (const quota of (await first.getProjectQuotaSet(organization, doomed)).quotas) {
        expect(quota).toMatchObject({ cap: null, guaranteed: 0, used: 0, committed: 0, reserved: 0, held: 0 });
      }
      await first.setProjectQuotaSet(organization, doomed, [{ kind: 'gpus', cap: 80, guaranteed: 20 }]);
      for (let i = 0; i < 5; i += 1) {
        await first.createAllocation(organization, doomed, gpus(`seed-${round}-${i}`));
        await first.createAllocation(organization, bystander, gpus(`by-seed-${round}-${i}`));
      }
      const seededHolds: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        const hold = await first.createHold(organization, doomed, { ...gpus(`seed-hold-${round}-${i}`), ttlSeconds: holdTtlSeconds });
        seededHolds.push(hold.id);
      }
      const startRevision = await lastRevision(first, organization);

      type Op = { kind: 'create' | 'hold' | 'confirm' | 'release' | 'project-quota' | 'bystander' | 'delete'; result: Promise<unknown> };
      const ops: Op[] = [];
      const samples: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i += 1) {
        const ledger = on(i + round);
        if (i === deleteAt) {
          ops.push({ kind: 'delete', result: ledger.deleteProject(organization, doomed, { cascade: true }) });
        } else if (i % 5 === 0 || i % 5 === 1) {
          ops.push({ kind: 'create', result: ledger.createAllocation(organization, doomed, gpus(`d-${round}-${i}`)) });
        } else if (i % 5 === 2) {
          ops.push({
            kind: 'hold',
            result: ledger.createHold(organization, doomed, { ...gpus(`h-${round}-${i}`), ttlSeconds: holdTtlSeconds }),
          });
        } else if (i % 5 === 3) {
          ops.push({ kind: 'bystander', result: ledger.createAllocation(organization, bystander, gpus(`b-${round}-${i}`)) });
        } else if (seededHolds.length > 0) {
          const id = seededHolds.shift()!;
          const confirm = seededHolds.length % 2 === 0;
          ops.push(
            confirm
              ? { kind: 'confirm', result: ledger.confirmHold(organization, doomed, id) }
              : { kind: 'release', result: ledger.releaseHold(organization, doomed, id) },
          );
        } else {
          ops.push({
            kind: 'project-quota',
            result: ledger.setProjectQuotaSet(organization, doomed, [{ kind: 'gpus', cap: 80, guaranteed: 20 + (i % 10) }]),
          });
        }
        if (i % 10 === 5) {
          samples.push(
            sampling(async () => {
              expectBooksConsistent(await booksOf(on(i + 1), organization, 'gpus'));
              const quota = gpusOf(await on(i + 2).getQuotas(organization));
              expect(quota.used).toBeLessThanOrEqual(quota.quantity!);
            }),
          );
        }
      }
      const results = await Promise.allSettled(ops.map((op) => op.result));
      await expectSamplesPassed(samples);

      const count = (kind: Op['kind']) => results.filter((r, i) => ops[i]!.kind === kind && r.status === 'fulfilled').length;
      results.forEach((result, i) => {
        const op = ops[i]!;
        if (op.kind === 'delete' || op.kind === 'bystander') {
          expect(result.status, `${op.kind} failed: ${result.status === 'rejected' ? String(result.reason) : ''}`).toBe('fulfilled');
          return;
        }
        // Anything in the doomed project either committed before the deletion or found it gone.
        if (result.status === 'rejected') {
          expect(allotErrorOf(result).code, String(result.reason)).toBe('not-found');
          doomedNotFound += 1;
        } else {
          doomedGranted += 1;
        }
      });
      const deleted = (results[deleteAt] as PromiseFulfilledResult<{ allocations: number; holds: number }>).value;
      // Every success committed before the deletion, so the cascade ended exactly those.
      expect(deleted).toEqual({
        allocations: 5 + count('create') + count('confirm'),
        holds: 6 + count('hold') - count('confirm') - count('release'),
      });

      // Nothing live or pending belongs to the deleted project, and its counters are gone.
      const leftovers = await first.store.transaction(
        async (tx: Executor) => ({
          records: await tx.get<{ n: number }>(
            `SELECT COUNT(*) AS n FROM allocations WHERE organization_id = ? AND project_id = ? AND deleted_at IS NULL`,
            [organization, doomed],
          ),
          counters: await tx.get<{ n: number }>(
            'SELECT COUNT(*) AS n FROM project_counters WHERE organization_id = ? AND project_id = ?',
            [organization, doomed],
          ),
        }),
        { readOnly: true },
      );
      expect(Number(leftovers.records!.n)).toBe(0);
      expect(Number(leftovers.counters!.n)).toBe(0);
      for (const read of [
        () => first.getProject(organization, doomed),
        () => first.getProjectQuotaSet(organization, doomed),
        () => first.listAllocations(organization, doomed),
        () => first.listHolds(organization, doomed),
        () => first.createAllocation(organization, doomed, gpus(`after-${round}`)),
      ]) {
        await expect(read()).rejects.toMatchObject({ code: 'not-found' });
      }
      expect((await first.listProjects(organization)).items.map((p) => p.id)).toEqual([bystander]);

      // The organization counts the bystander alone, and the guarantee is gone with the project.
      const bystanderUsage = (await first.getProjectQuotaSet(organization, bystander)).quotas.find((q) => q.kind === 'gpus')!;
      // 5 seeded and 20 racing creates per round, all granted.
      expect(bystanderUsage.used).toBe(25 * (round + 1));
      expect(gpusOf(await first.getQuotas(organization))).toMatchObject({
        used: bystanderUsage.used,
        guaranteed: 0,
        freeForAnyProject: 200 - bystanderUsage.used,
      });

      // The journal tells the cascade: one entry per ended record, then project.deleted.
      const entries = (await journalOf(first, organization, startRevision)).filter((e) => e.project === doomed);
      const deletion = entries.filter((e) => e.action === 'project.deleted');
      expect(deletion).toHaveLength(1);
      expect(deletion[0]!.changes).toEqual({ cascade: true, ended: deleted });
      const cascaded = entries.filter((e) => e.changes.cascade === true && e.action !== 'project.deleted');
      expect(cascaded.filter((e) => e.action === 'allocation.deleted')).toHaveLength(deleted.allocations);
      expect(cascaded.filter((e) => e.action === 'hold.released')).toHaveLength(deleted.holds);
      for (const entry of cascaded) expect(entry.revision).toBeLessThan(deletion[0]!.revision);
      expect(entries.filter((e) => e.revision > deletion[0]!.revision)).toEqual([]);

      expect(await on(round).verifyCounters()).toEqual([]);
    }
    // The races really interleaved: some work in the doomed project beat the deletion, some
    // found the project gone.
    expect(doomedGranted).toBeGreaterThan(0);
    expect(doomedNotFound).toBeGreaterThan(0);

    // The revived project is empty and free of the old project quota.
    await first.putProject(organization, doomed, {});
    expect((await first.listAllocations(organization, doomed, { limit: 1000 })).items).toEqual([]);
    expect((await first.listHolds(organization, doomed, { limit: 1000 })).items).toEqual([]);
    expect((await first.getProjectQuotaSet(organization, doomed)).quotas.find((q) => q.kind === 'gpus')).toMatchObject({
      cap: null,
      guaranteed: 0,
      used: 0,
    });
    expect(await first.verifyCounters()).toEqual([]);
    expect(await first.verifyJournal()).toEqual([]);
    // No committed state, however short-lived, broke a project quota (kind defaults are 0 here).
    expect(brokenStates(await journalOf(first, organization), () => 0)).toEqual([]);
  });
});
