// Goal: the ledger's decisions agree with a simple in-memory reference model on every engine,
// over random interleavings of quota changes, allocation writes, holds (create, confirm in full,
// in part or for more than held, release, resolve twice) and a clock that moves so holds expire,
// and the books stay consistent after every step (DESIGN.md invariants 1-4: limits, counters,
// one live allocation or pending hold per resource, one journal entry per change).
// Method: model-based property test. For each engine, one ledger runs on a ManualClock, and
// fast-check generates a setup (2-3 kinds, one of them unlimited, random defaults;
// 2 organizations of 2 projects) and a sequence of up to 45 commands: setQuotas (absolute
// quantities, quantities relative to current usage or to the default so cuts below usage are
// common, null to revert to the default; with and without force), createAllocation and
// createHold (1-2 kinds, small amounts or exactly the free amount -1/0/+1 so requests land on
// the limit's edge, ttl 1-30 s; on a pool of 6 referenced resources so duplicates between
// allocations and holds happen), replaceAllocation (new lines, or the same lines swapped or
// reduced, the changes an over-limit kind must still accept; of live, deleted, misaddressed,
// never-created allocations or of holds), deleteAllocation (sometimes twice), resolveHold (a
// confirm of everything, of the same lines, of less, swapped, of fewer kinds, of more than held,
// of a kind not held; or a release; sometimes followed by a second confirm or release; of
// pending, expired, resolved, misaddressed or unknown holds), advanceClock (a little, to just
// before / exactly at / just after a hold's expiry, or past every hold; then sometimes
// sweepExpiredHolds, sometimes not, so the next decision must ignore an expired hold that the
// stored counters still carry), ifGeneration now and then (current and stale) on replace, delete,
// confirm and release, and now and then a request naming an unknown kind or listing a kind
// twice; setProjectQuotaSet (caps and guarantees, absolute or relative to the project's usage
// or to the most the organization's limit leaves for a guarantee, so they land on the edges;
// with and without force) and deleteProject (with or without cascade, then sometimes put again
// as a new, empty project), with the lines of creates and replaces filling up to the project's
// room (its cap, or the limit less what other projects' guarantees keep back). Half the runs
// start with every project's counter row of every kind in place (PostgreSQL's one-statement
// decision needs it; the general path runs without). Each command runs against the real ledger and against test/support/reference-model.ts,
// which decides on its own; the test asserts the same outcome (success with the same allocation
// or hold, or an AllotError with the same code and the same violations / below-usage list /
// existing allocation id / resolution / current generation), then, after every step: getQuotas
// (committed, reserved, held, used, limit, guaranteed, freeForAnyProject; expired holds left
// out, resolved or not) matches the model for every organization and kind, and
// getProjectQuotaSet (cap, guarantee, usage, available, overCap) for every project; the
// guarantees never add up to more than the limit, usage plus what they keep back stays within
// it and every project within its cap, unless a forced change put it over; getHold of every hold of the run matches (status by
// time, generation, lines, resolvedAt); verifyCounters finds no drift; no kind is over its limit
// unless a forced quota put it there; each organization's journal has revisions 1..N without
// gaps, exactly the entries (action, subject) the model expects, and the sum of its deltas per
// kind equals the stored counters (which still carry expired holds until they are resolved and
// journaled). At the end of a run, listAllocations and listHolds match the model and no
// resource is taken twice. Decisions are also queued several in one tick (one group commit)
// and sent as batches (independent or atomic); in a tick, some carry idempotency keys: the
// response stored under each is the model's outcome (refusals too), a retry gets it again in a
// group with others and changes nothing, another request under the key is refused, and the
// run's records number exactly its decided keyed decisions.
// One ledger per engine is shared by all runs; each run uses fresh, uniquely named kinds and
// organizations, and starts by moving the clock past every earlier hold and sweeping, so runs
// (and fast-check's shrinking replays) never see each other.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, openStore, type Executor, type Hold, type Ledger, type Store } from '../../src/index.js';
import { prepareEntry, type BatchEntry } from '../../src/ledger/engine/batch.js';
import type { OperationOutcome } from '../../src/ledger/engine/engine.js';
import type { SqlValue } from '../../src/store/store.js';
import {
  ReferenceModel,
  unlimited,
  type HoldView,
  type ModelAllocation,
  type ModelHold,
  type ModelLine,
  type ModelResource,
  type Outcome,
} from '../support/reference-model.js';
import { createTestDatabase, engines, ManualClock, type TestDatabase } from '../support/engines.js';

const numRuns = Number(process.env.MODEL_RUNS ?? 50);
const maxCommands = 45;
const projectIds = ['p0', 'p1'];
const resourceKinds = ['server', 'volume'];
const resourceIds = ['x0', 'x1', 'x2'];
/** Hold lifetimes the commands ask for; a run starts by moving the clock past the longest. */
const ttlSecondsMax = 30;

/** The fast-check model: the reference model plus the names this run uses. */
interface World {
  ref: ReferenceModel;
  prefix: string;
  kinds: string[];
  organizations: string[];
  /** The clock when the run started. */
  startMs: number;
  /** Idempotency keys used so far (their decisions stored a response each, unless malformed). */
  keysUsed: number;
  keysStored: number;
}

interface Real {
  ledger: Ledger;
  clock: ManualClock;
  /** Statements sent after their transaction's work had finished: see watchedStore. */
  late: string[];
}

/**
 * The store the ledger runs on, watched: a statement sent on a transaction's executor after
 * the transaction's work has finished (its COMMIT already requested) runs outside that
 * transaction, so a change and its journal entry would no longer commit or fail together
 * (invariant 4: every change has exactly one journal entry, in its own transaction). Such
 * statements still run; they are noted in `late`, which every step expects empty.
 */
function watchedStore(inner: Store, late: string[]): Store {
  return {
    engine: inner.engine,
    dialect: inner.dialect,
    setupStatements: inner.setupStatements,
    isUniqueViolation: (error) => inner.isUniqueViolation(error),
    close: () => inner.close(),
    transaction: (work, options) =>
      inner.transaction(async (tx) => {
        let open = true;
        const note = (sql: string) => {
          if (!open) late.push(sql.replace(/\s+/g, ' ').slice(0, 120));
        };
        const executor: Executor = {
          all<Row>(sql: string, params?: readonly SqlValue[]) {
            note(sql);
            return tx.all<Row>(sql, params);
          },
          get<Row>(sql: string, params?: readonly SqlValue[]) {
            note(sql);
            return tx.get<Row>(sql, params);
          },
          run(sql: string, params?: readonly SqlValue[]) {
            note(sql);
            return tx.run(sql, params);
          },
          write(writes) {
            for (const { table } of writes) note(`write ${table}`);
            return tx.write(writes);
          },
          selectMany(queries) {
            for (const { sql } of queries) note(sql);
            return tx.selectMany(queries);
          },
        };
        try {
          return await work(executor);
        } finally {
          open = false;
        }
      }, options),
  };
}

// Outcomes, normalized so that one toEqual compares the ledger's answer with the model's.

type Normalized =
  | { ok: true }
  | {
      ok: false;
      code: string;
      violations?: unknown;
      belowUsage?: unknown;
      existingAllocationId?: unknown;
      resolution?: unknown;
      currentGeneration?: unknown;
      overGuaranteed?: unknown;
      unavailable?: unknown;
      live?: unknown;
    };

async function attempt<T>(work: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: AllotError }> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    if (error instanceof AllotError) return { ok: false, error };
    throw error;
  }
}

function normalizeActual(actual: { ok: true } | { ok: false; error: AllotError }): Normalized {
  if (actual.ok) return { ok: true };
  const { code, extensions } = actual.error;
  switch (code) {
    case 'quota-exceeded':
      return { ok: false, code, violations: extensions.violations };
    case 'quota-below-usage':
      return { ok: false, code, belowUsage: extensions.belowUsage };
    case 'duplicate-allocation':
      return { ok: false, code, existingAllocationId: extensions.existingAllocationId };
    case 'hold-already-resolved':
      return { ok: false, code, resolution: extensions.resolution };
    case 'precondition-failed':
      return { ok: false, code, currentGeneration: extensions.currentGeneration };
    case 'guarantees-exceed-quota':
      return { ok: false, code, overGuaranteed: extensions.overGuaranteed };
    case 'guarantee-unavailable':
      return { ok: false, code, unavailable: extensions.unavailable };
    case 'project-not-empty':
      return { ok: false, code, live: extensions.live };
    default:
      return { ok: false, code };
  }
}

function normalizeExpected(expected: Outcome<unknown>): Normalized {
  if (expected.ok) return { ok: true };
  const { ok, ...rest } = expected;
  return { ok, ...rest };
}

function allocationView(a: ModelAllocation) {
  return {
    id: a.id,
    organization: a.organization,
    project: a.project,
    resource: a.resource,
    allocations: a.lines,
    generation: a.generation,
  };
}

function actualHoldView(hold: Hold): HoldView {
  const { id, organization, project, resource, allocations, generation, status, expiresAt, resolvedAt } = hold;
  return { id, organization, project, resource, allocations, generation, status, expiresAt, resolvedAt };
}

// What every step ends with.

async function checkState(m: World, r: Real): Promise<void> {
  expect(r.late.splice(0), 'statements sent after their transaction ended').toEqual([]);
  for (const organization of m.organizations) {
    const actual = (await r.ledger.getQuotas(organization))
      .filter((q) => m.ref.kinds.has(q.kind))
      .map(({ kind, quantity, source, committed, reserved, held, used, overLimit, guaranteed, freeForAnyProject }) => ({
        kind,
        quantity,
        source,
        committed,
        reserved,
        held,
        used,
        overLimit,
        guaranteed,
        freeForAnyProject,
      }));
    expect(actual, `getQuotas(${organization}) at +${elapsed(m, r)} ms`).toEqual(m.ref.quotasOf(organization));
    // Invariant 1: within the limit, unless a forced quota cut the kind below its usage; the
    // guarantees never add up to more than the limit; and usage plus what they keep back stays
    // within it, unless a forced change put it over.
    for (const quota of actual) {
      if (quota.quantity === null) continue;
      if (!m.ref.isForcedOver(organization, quota.kind)) {
        expect(quota.used, `invariant 1: ${organization}/${quota.kind}`).toBeLessThanOrEqual(quota.quantity);
      }
      expect(quota.guaranteed, `guarantees within ${organization}/${quota.kind}`).toBeLessThanOrEqual(quota.quantity);
      if (!m.ref.isForcedOverGuarantees(organization, quota.kind)) {
        expect(quota.used + m.ref.keptBackOf(organization, quota.kind), `guarantees kept: ${organization}/${quota.kind}`)
          .toBeLessThanOrEqual(quota.quantity);
      }
    }
    for (const project of projectIds) {
      if (!m.ref.hasProject(organization, project)) {
        const gone = await attempt(() => r.ledger.getProjectQuotaSet(organization, project));
        expect(normalizeActual(gone as never), `getProjectQuotaSet(${organization}, ${project}) of a deleted project`).toEqual({ ok: false, code: 'not-found' });
        continue;
      }
      const projectQuota = (await r.ledger.getProjectQuotaSet(organization, project)).quotas
        .filter((q) => m.ref.kinds.has(q.kind))
        .map(({ kind, cap, guaranteed, committed, reserved, held, used, available, overCap }) => ({
          kind,
          cap,
          guaranteed,
          committed,
          reserved,
          held,
          used,
          available,
          overCap,
        }));
      expect(projectQuota, `getProjectQuotaSet(${organization}, ${project}) at +${elapsed(m, r)} ms`).toEqual(
        m.ref.projectQuotasOf(organization, project),
      );
      for (const quota of projectQuota) {
        if (quota.cap !== null && !m.ref.isForcedOverCap(organization, project, quota.kind)) {
          expect(quota.used, `cap of ${organization}/${project}/${quota.kind}`).toBeLessThanOrEqual(quota.cap);
        }
      }
    }
    await checkJournal(m, r, organization);
  }
  await checkHolds(m, r);
  // Invariant 2, for the run's own organizations: earlier runs are checked by their own steps
  // and by the afterAll (keeps shrinking meaningful; a global check would reread every earlier
  // run's rows at every step).
  const drift = (await Promise.all(m.organizations.map((organization) => r.ledger.verifyCounters(organization)))).flat();
  expect(drift, 'verifyCounters').toEqual([]);
}

/**
 * Invariant 4 and the journal's promise: revisions 1..N without gaps, exactly one entry per
 * committed change (the model's list: action and subject, in order), and the deltas of all
 * entries, summed per kind, reproduce the organization's stored counters. Those are the
 * model's books: getQuotas leaves out holds that expired and are not resolved yet, the
 * counters (and the journal, which has no hold.expired entry for them yet) still carry them;
 * verifyCounters ties the stored counters to the rows, and the getQuotas check ties the
 * model's two views to the ledger's.
 */
async function checkJournal(m: World, r: Real, organization: string): Promise<void> {
  const entries = [];
  for (;;) {
    const page = await r.ledger.readJournal(organization, entries.at(-1)?.revision ?? 0, 1000);
    entries.push(...page);
    if (page.length < 1000) break;
  }
  expect(
    entries.map((e) => e.revision),
    `journal revisions of ${organization}`,
  ).toEqual(entries.map((_, i) => i + 1));
  expect(
    entries.map(({ action, subject }) => ({ action, subject })),
    `journal entries of ${organization}`,
  ).toEqual(m.ref.journalOf(organization));
  const replayed = new Map<string, { committed: number; reserved: number; held: number }>();
  for (const entry of entries) {
    for (const delta of entry.deltas) {
      const sum = replayed.get(delta.kind) ?? { committed: 0, reserved: 0, held: 0 };
      sum.committed += delta.committed;
      sum.reserved += delta.reserved;
      sum.held += delta.held;
      replayed.set(delta.kind, sum);
    }
  }
  expect([...replayed.keys()].filter((kind) => !m.ref.kinds.has(kind)), 'journal: deltas of unknown kinds').toEqual([]);
  const kinds = [...m.ref.kinds.keys()].sort();
  expect(
    kinds.map((kind) => ({ kind, ...(replayed.get(kind) ?? { committed: 0, reserved: 0, held: 0 }) })),
    `journal replay of ${organization} (${m.ref.dueHolds().length} expired holds not yet resolved)`,
  ).toEqual(kinds.map((kind) => ({ kind, ...m.ref.booksOf(organization, kind) })));
}

/** getHold of every hold of the run: status by the clock, generation, lines, resolution time. */
async function checkHolds(m: World, r: Real): Promise<void> {
  for (const hold of m.ref.holds) {
    if (!m.ref.hasProject(hold.organization, hold.project)) {
      const gone = await attempt(() => r.ledger.getHold(hold.organization, hold.project, hold.id));
      expect(normalizeActual(gone as never), `getHold(${hold.id}) in a deleted project`).toEqual({ ok: false, code: 'not-found' });
      continue;
    }
    const actual = actualHoldView(await r.ledger.getHold(hold.organization, hold.project, hold.id));
    expect(actual, `getHold(${hold.id}) at +${elapsed(m, r)} ms`).toEqual(m.ref.holdView(hold));
  }
}

/**
 * At the end of a run: the live allocations and pending holds listed per project are exactly
 * the model's, and (invariant 3) no referenced resource is taken twice in an organization.
 */
async function checkAllocations(m: World, r: Real): Promise<void> {
  const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  for (const organization of m.organizations) {
    const referenced: string[] = [];
    for (const project of projectIds) {
      if (!m.ref.hasProject(organization, project)) continue;
      const page = await r.ledger.listAllocations(organization, project);
      const actual = page.items.map(({ id, organization, project, resource, allocations, generation }) => ({
        id,
        organization,
        project,
        resource,
        allocations,
        generation,
      }));
      const expected = m.ref.liveAllocationsOf(organization, project).map(allocationView).sort(byId);
      expect(actual, `listAllocations(${organization}, ${project})`).toEqual(expected);
      const holds = (await r.ledger.listHolds(organization, project)).items.map(actualHoldView);
      const expectedHolds = m.ref
        .pendingHoldsOf(organization, project)
        .map((hold) => m.ref.holdView(hold))
        .sort(byId);
      expect(holds, `listHolds(${organization}, ${project})`).toEqual(expectedHolds);
      referenced.push(...[...actual, ...holds].map((a) => `${a.resource.kind}/${a.resource.id}`));
    }
    expect(new Set(referenced).size, `invariant 3: ${organization} ${show(referenced)}`).toBe(referenced.length);
  }
}

// Command inputs. Indexes are resolved against the run's names when a command runs, so the
// same command stays meaningful while fast-check shrinks the sequence around it.

type Twist = 'none' | 'unknown-kind' | 'repeated-kind';

interface LineSpec {
  kind: number;
  committed: number;
  reserved: number;
  /**
   * null: take committed and reserved as they are. A number: ask for exactly what is free in
   * the kind's limit (as a decision sees it: expired holds are free), plus this (-1, 0 or +1),
   * so requests land on the limit's edge.
   */
  fill: number | null;
}

interface ResourceSpec {
  kind: number;
  id: number;
}

/** How a replace or delete addresses its allocation. */
type Target = 'own' | 'other-project' | 'other-organization' | 'never-created' | 'hold';
/** How a confirm or release addresses its hold. */
type HoldTarget = 'own' | 'other-project' | 'other-organization' | 'never-created' | 'allocation';
/**
 * Which holds a confirm or release picks from: pending now; open in the books (pending, or
 * expired but not yet resolved: the confirm must find it expired); or any, resolved included.
 */
type HoldPool = 'pending' | 'open' | 'any';
/** ifGeneration: absent, the target's current generation, or one off it. */
type GenerationSpec = 'none' | 'current' | 'stale-below' | 'stale-above';

// Activity leans on the first organization and kind, so one (organization, kind) sees long
// histories (quota raised, filled, cut, reverted) while the others still check isolation.
const kindIndex = fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.nat(2), weight: 1 });
const organizationIndex = fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.nat(1), weight: 1 });
const twist = fc.oneof(
  { arbitrary: fc.constant<Twist>('none'), weight: 16 },
  { arbitrary: fc.constantFrom<Twist>('unknown-kind', 'repeated-kind'), weight: 1 },
);
const target = fc.oneof(
  { arbitrary: fc.constant<Target>('own'), weight: 12 },
  { arbitrary: fc.constantFrom<Target>('other-project', 'other-organization', 'never-created', 'hold'), weight: 1 },
);
const holdTarget = fc.oneof(
  { arbitrary: fc.constant<HoldTarget>('own'), weight: 12 },
  {
    arbitrary: fc.constantFrom<HoldTarget>('other-project', 'other-organization', 'never-created', 'allocation'),
    weight: 1,
  },
);
const generationSpec = fc.oneof(
  { arbitrary: fc.constant<GenerationSpec>('none'), weight: 6 },
  { arbitrary: fc.constant<GenerationSpec>('current'), weight: 2 },
  { arbitrary: fc.constantFrom<GenerationSpec>('stale-below', 'stale-above'), weight: 1 },
);
const anyKnown = fc.nat(3).map((n) => n === 0);
const holdPool = fc.oneof(
  { arbitrary: fc.constant<HoldPool>('pending'), weight: 6 },
  { arbitrary: fc.constant<HoldPool>('open'), weight: 2 },
  { arbitrary: fc.constant<HoldPool>('any'), weight: 1 },
);
/**
 * A quota: null (back to the kind's default), an absolute quantity, or one relative to the
 * kind's usage or default when the command runs, so quotas often land just below, at or above
 * usage, and above the default (which later makes a revert to the default fall below usage).
 */
type QuantitySpec = null | { absolute: number } | { belowUsage: number } | { aboveDefault: number };
const quotaQuantity: fc.Arbitrary<QuantitySpec> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 2 },
  { arbitrary: fc.nat(20).map((absolute) => ({ absolute })), weight: 1 },
  { arbitrary: fc.integer({ min: -1, max: 3 }).map((belowUsage) => ({ belowUsage })), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 8 }).map((aboveDefault) => ({ aboveDefault })), weight: 2 },
);

/**
 * How a replace picks its new lines: from the generated specs, or from the allocation's own
 * lines with committed and reserved swapped (same usage) or reduced (lower usage): the changes
 * a kind over its limit must still accept.
 */
type LineMode = 'new' | 'swap' | 'reduce';
const lineMode = fc.constantFrom<LineMode>('new', 'new', 'swap', 'reduce');
const resourceSpec = fc.record({ kind: fc.nat(resourceKinds.length - 1), id: fc.nat(resourceIds.length - 1) });
const lineSpecs = fc.uniqueArray(
  fc.record({
    kind: kindIndex,
    committed: fc.nat(4),
    reserved: fc.nat(3),
    fill: fc.oneof({ arbitrary: fc.constant(null), weight: 1 }, { arbitrary: fc.integer({ min: -1, max: 1 }), weight: 1 }),
  }),
  { minLength: 1, maxLength: 2, selector: (spec) => spec.kind },
);

/**
 * What a confirm sends: nothing (everything held), the held lines as they are, less of each
 * kind, committed and reserved swapped (same amount), fewer kinds, one more than held, a kind
 * the hold does not hold, an unknown kind, or a kind listed twice.
 */
type ConfirmMode = 'all' | 'same' | 'part' | 'swap' | 'drop' | 'more' | 'other-kind' | 'unknown-kind' | 'repeated-kind';
const confirmMode = fc.oneof(
  { arbitrary: fc.constant<ConfirmMode>('all'), weight: 6 },
  { arbitrary: fc.constantFrom<ConfirmMode>('part', 'more'), weight: 4 },
  { arbitrary: fc.constantFrom<ConfirmMode>('same', 'swap', 'drop', 'other-kind'), weight: 4 },
  { arbitrary: fc.constantFrom<ConfirmMode>('unknown-kind', 'repeated-kind'), weight: 1 },
);
type ResolveStep = { op: 'confirm'; mode: ConfirmMode; ifGeneration: GenerationSpec } | { op: 'release'; ifGeneration: GenerationSpec };
const resolveStep: fc.Arbitrary<ResolveStep> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant<'confirm'>('confirm'), mode: confirmMode, ifGeneration: generationSpec }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant<'release'>('release'), ifGeneration: generationSpec }), weight: 1 },
);

function resourceOf(spec: ResourceSpec): ModelResource {
  return { kind: resourceKinds[spec.kind]!, id: resourceIds[spec.id]! };
}

function generationOf(spec: GenerationSpec, current: number): number | undefined {
  switch (spec) {
    case 'none':
      return undefined;
    case 'current':
      return current;
    case 'stale-below':
      return current - 1;
    case 'stale-above':
      return current + 1;
  }
}

/** Milliseconds since the run started, for messages. */
const elapsed = (m: World, r: Real) => r.clock.nowMs() - m.startMs;

/** The lines of a create (allocation or hold), or of a replace of `own`, in `organization`. */
function linesOf(
  m: World,
  organization: string,
  project: string,
  specs: readonly LineSpec[],
  how: Twist,
  own?: ModelAllocation,
): ModelLine[] {
  const lines: ModelLine[] = [];
  for (const spec of specs) {
    const kind = m.kinds[spec.kind % m.kinds.length]!;
    if (lines.some((line) => line.kind === kind)) continue;
    const ownLine = own?.live ? own.lines.find((line) => line.kind === kind) : undefined;
    // The edge of what the project may take: its cap, or the organization's limit less what
    // the other projects' guarantees keep back, whichever is nearer.
    const room = m.ref.roomOf(organization, project, kind, ownLine ? ownLine.committed + ownLine.reserved : 0);
    if (spec.fill === null || room === Infinity) {
      lines.push({ kind, committed: spec.committed, reserved: spec.reserved });
      continue;
    }
    const total = Math.max(0, room + spec.fill);
    const reserved = Math.min(total, spec.reserved);
    lines.push({ kind, committed: total - reserved, reserved });
  }
  return twisted(lines, m, how);
}

/** The lines a replace sends: see LineMode. */
function replacementLines(
  m: World,
  organization: string,
  project: string,
  allocation: ModelAllocation | undefined,
  mode: LineMode,
  specs: readonly LineSpec[],
  how: Twist,
): ModelLine[] {
  if (mode === 'new' || !allocation) return linesOf(m, organization, project, specs, how, allocation);
  const lines = allocation.lines.map(({ kind, committed, reserved }) =>
    mode === 'swap'
      ? { kind, committed: reserved, reserved: committed }
      : { kind, committed: Math.floor(committed / 2), reserved: Math.max(0, reserved - 1) },
  );
  return twisted(lines, m, how);
}

function twisted(lines: ModelLine[], m: World, how: Twist): ModelLine[] {
  if (how === 'unknown-kind') lines.push({ kind: `${m.prefix}-nokind`, committed: 1, reserved: 0 });
  if (how === 'repeated-kind') lines.push({ ...lines[0]!, committed: lines[0]!.committed + 1 });
  return lines;
}

/** The lines a confirm sends (undefined: none, confirm everything): see ConfirmMode. */
function confirmLines(m: World, hold: ModelHold | undefined, mode: ConfirmMode): ModelLine[] | undefined {
  if (mode === 'all') return undefined;
  const held = hold?.lines ?? [{ kind: m.kinds[0]!, committed: 1, reserved: 0 }];
  const same = held.map((line) => ({ ...line }));
  switch (mode) {
    case 'same':
      return same;
    case 'part':
      return held.map(({ kind, committed, reserved }) => ({
        kind,
        committed: Math.floor(committed / 2),
        reserved: Math.max(0, reserved - 1),
      }));
    case 'swap':
      return held.map(({ kind, committed, reserved }) => ({ kind, committed: reserved, reserved: committed }));
    case 'drop':
      return same.length > 1 ? same.slice(1) : [{ kind: held[0]!.kind, committed: 0, reserved: 0 }];
    case 'more':
      return [{ ...same[0]!, committed: same[0]!.committed + 1 }, ...same.slice(1)];
    case 'other-kind': {
      const other = m.kinds.find((kind) => !held.some((line) => line.kind === kind)) ?? `${m.prefix}-nokind`;
      return [...same, { kind: other, committed: 0, reserved: 0 }];
    }
    case 'unknown-kind':
      return [...same, { kind: `${m.prefix}-nokind`, committed: 0, reserved: 0 }];
    case 'repeated-kind':
      return [...same, { ...same[0]! }];
  }
}

const show = (value: unknown) => JSON.stringify(value);

/**
 * Where a replace or delete is sent, and the model's allocation it was meant for (if any):
 * `ref` picks among the live allocations, or (with `anyKnown`) among all ever created, so
 * deleted ones are picked too; `hold` sends it to a hold's id (pending, resolved or confirmed).
 */
function address(m: World, ref: number, anyKnown: boolean, how: Target) {
  if (how === 'hold' && m.ref.holds.length > 0) {
    const hold = m.ref.holds[ref % m.ref.holds.length]!;
    const allocation = m.ref.allocations.find((a) => a.id === hold.id);
    return { organization: hold.organization, project: hold.project, id: hold.id, allocation };
  }
  const live = m.ref.allocations.filter((a) => a.live);
  const known = anyKnown || live.length === 0 ? m.ref.allocations : live;
  if (known.length === 0 || how === 'never-created' || how === 'hold') {
    return { organization: m.organizations[0]!, project: projectIds[0]!, id: randomUUID(), allocation: undefined };
  }
  const allocation = known[ref % known.length]!;
  const otherOrganization = m.organizations.find((o) => o !== allocation.organization)!;
  const otherProject = projectIds.find((p) => p !== allocation.project)!;
  return {
    organization: how === 'other-organization' ? otherOrganization : allocation.organization,
    project: how === 'other-project' ? otherProject : allocation.project,
    id: allocation.id,
    allocation,
  };
}

/**
 * Where a confirm or release is sent, and the model's hold it was meant for (if any): `ref`
 * picks among the holds of `pool` (or, if it has none, of the next wider pool); `allocation`
 * sends it to a plain allocation's id.
 */
function addressHold(m: World, ref: number, pool: HoldPool, how: HoldTarget) {
  const fresh = { organization: m.organizations[0]!, project: projectIds[0]!, id: randomUUID(), hold: undefined };
  if (how === 'allocation') {
    const plain = m.ref.allocations.filter((a) => !m.ref.holds.some((h) => h.id === a.id));
    const allocation = plain[ref % Math.max(1, plain.length)];
    return allocation
      ? { organization: allocation.organization, project: allocation.project, id: allocation.id, hold: undefined }
      : fresh;
  }
  const pending = pool === 'pending' ? m.ref.pendingHolds() : [];
  const open = pool !== 'any' ? m.ref.holds.filter((h) => h.booked === 'pending') : [];
  const known = pending.length > 0 ? pending : open.length > 0 ? open : m.ref.holds;
  if (known.length === 0 || how === 'never-created') return fresh;
  const hold = known[ref % known.length]!;
  const otherOrganization = m.organizations.find((o) => o !== hold.organization)!;
  const otherProject = projectIds.find((p) => p !== hold.project)!;
  return {
    organization: how === 'other-organization' ? otherOrganization : hold.organization,
    project: how === 'other-project' ? otherProject : hold.project,
    id: hold.id,
    hold,
  };
}

class SetQuotas implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly organization: number,
    readonly entries: { kind: number; quantity: QuantitySpec }[],
    readonly force: boolean,
    readonly unknownKind: boolean,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const organization = m.organizations[this.organization]!;
    const inputs: { kind: string; quantity: number | null }[] = [];
    for (const entry of this.entries) {
      const kind = m.kinds[entry.kind % m.kinds.length]!;
      if (inputs.some((input) => input.kind === kind)) continue;
      const spec = entry.quantity;
      const quantity =
        spec === null
          ? null
          : 'absolute' in spec
            ? spec.absolute
            : 'aboveDefault' in spec
              ? (m.ref.kinds.get(kind) ?? 0) + spec.aboveDefault
              : Math.max(0, m.ref.usedOf(organization, kind) - spec.belowUsage);
      inputs.push({ kind, quantity });
    }
    if (this.unknownKind) inputs.push({ kind: `${m.prefix}-nokind`, quantity: 5 });
    const call = `setQuotas(${organization}, ${show(inputs)}, {force: ${this.force}})`;
    const actual = await attempt(() => r.ledger.setQuotas(organization, inputs, { force: this.force }));
    const expected = m.ref.setQuotas(organization, inputs, this.force);
    expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
    await checkState(m, r);
  }
  toString() {
    return `setQuotas(o${this.organization}, ${show(this.entries)}, force=${this.force}${this.unknownKind ? ', +unknown kind' : ''})`;
  }
}

class CreateAllocation implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly organization: number,
    readonly project: number,
    readonly resource: ResourceSpec,
    readonly lines: LineSpec[],
    readonly twist: Twist,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const organization = m.organizations[this.organization]!;
    const project = projectIds[this.project]!;
    const resource = resourceOf(this.resource);
    const lines = linesOf(m, organization, project, this.lines, this.twist);
    const call = `createAllocation(${organization}, ${project}, ${show(resource)}, ${show(lines)})`;
    const actual = await attempt(() =>
      r.ledger.createAllocation(organization, project, { resource, allocations: lines }),
    );
    const id = actual.ok ? actual.value.id : 'refused';
    const expected = m.ref.createAllocation(organization, project, id, resource, lines);
    expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
    if (actual.ok && expected.ok) {
      const { id, organization, project, resource, allocations, generation } = actual.value;
      expect({ id, organization, project, resource, allocations, generation }, call).toEqual(
        allocationView(expected.value),
      );
    }
    await checkState(m, r);
  }
  toString() {
    return `createAllocation(o${this.organization}, p${this.project}, ${show(resourceOf(this.resource))}, ${show(this.lines)}${this.twist === 'none' ? '' : `, ${this.twist}`})`;
  }
}

class ReplaceAllocation implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly allocation: number,
    readonly anyKnown: boolean,
    readonly target: Target,
    /** null keeps the allocation's current resource. */
    readonly resource: ResourceSpec | null,
    readonly mode: LineMode,
    readonly lines: LineSpec[],
    readonly twist: Twist,
    readonly ifGeneration: GenerationSpec,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const { organization, project, id, allocation } = address(m, this.allocation, this.anyKnown, this.target);
    const resource =
      this.resource === null && allocation ? { ...allocation.resource } : resourceOf(this.resource ?? { kind: 0, id: 0 });
    const lines = replacementLines(m, organization, project, allocation, this.mode, this.lines, this.twist);
    const ifGeneration = generationOf(this.ifGeneration, allocation?.generation ?? 1);
    const call = `replaceAllocation(${organization}, ${project}, ${id}${allocation?.live === false ? ' (deleted)' : ''}, ${show(resource)}, ${show(lines)}, {ifGeneration: ${ifGeneration}})`;
    const actual = await attempt(() =>
      r.ledger.replaceAllocation(organization, project, id, { resource, allocations: lines }, { ifGeneration }),
    );
    const expected = m.ref.replaceAllocation(organization, project, id, resource, lines, ifGeneration);
    expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
    if (actual.ok && expected.ok) {
      const { id, organization, project, resource, allocations, generation } = actual.value;
      expect({ id, organization, project, resource, allocations, generation }, call).toEqual(
        allocationView(expected.value),
      );
    }
    await checkState(m, r);
  }
  toString() {
    const resource = this.resource === null ? 'same resource' : show(resourceOf(this.resource));
    return `replaceAllocation(#${this.allocation}${this.anyKnown ? ' of all' : ' of live'}, ${this.target}, ${resource}, ${this.mode === 'new' ? show(this.lines) : `${this.mode} lines`}${this.twist === 'none' ? '' : `, ${this.twist}`}${this.ifGeneration === 'none' ? '' : `, ifGeneration ${this.ifGeneration}`})`;
  }
}

class DeleteAllocation implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly allocation: number,
    readonly anyKnown: boolean,
    readonly target: Target,
    readonly twice: boolean,
    readonly ifGeneration: GenerationSpec,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const { organization, project, id, allocation } = address(m, this.allocation, this.anyKnown, this.target);
    // Resolved once: a retried delete sends the same If-Match as the first.
    const ifGeneration = generationOf(this.ifGeneration, allocation?.generation ?? 1);
    for (let round = 0; round < (this.twice ? 2 : 1); round += 1) {
      const call = `deleteAllocation(${organization}, ${project}, ${id}, {ifGeneration: ${ifGeneration}}) #${round + 1}`;
      const actual = await attempt(() => r.ledger.deleteAllocation(organization, project, id, { ifGeneration }));
      const expected = m.ref.deleteAllocation(organization, project, id, ifGeneration);
      expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
      if (actual.ok && expected.ok) expect(actual.value, call).toEqual(expected.value);
      await checkState(m, r);
    }
  }
  toString() {
    return `deleteAllocation(#${this.allocation}${this.anyKnown ? ' of all' : ' of live'}, ${this.target}${this.twice ? ', twice' : ''}${this.ifGeneration === 'none' ? '' : `, ifGeneration ${this.ifGeneration}`})`;
  }
}

class CreateHold implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly organization: number,
    readonly project: number,
    readonly resource: ResourceSpec,
    readonly lines: LineSpec[],
    readonly ttlSeconds: number,
    readonly twist: Twist,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const organization = m.organizations[this.organization]!;
    const project = projectIds[this.project]!;
    const resource = resourceOf(this.resource);
    const lines = linesOf(m, organization, project, this.lines, this.twist);
    const ttlSeconds = this.ttlSeconds;
    const call = `createHold(${organization}, ${project}, ${show(resource)}, ${show(lines)}, ttl ${ttlSeconds} s) at +${elapsed(m, r)} ms`;
    const actual = await attempt(() =>
      r.ledger.createHold(organization, project, { resource, allocations: lines, ttlSeconds }),
    );
    const id = actual.ok ? actual.value.id : 'refused';
    const expected = m.ref.createHold(organization, project, id, resource, lines, ttlSeconds);
    expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
    if (actual.ok && expected.ok) expect(actualHoldView(actual.value), call).toEqual(expected.value);
    await checkState(m, r);
  }
  toString() {
    return `createHold(o${this.organization}, p${this.project}, ${show(resourceOf(this.resource))}, ${show(this.lines)}, ttl ${this.ttlSeconds} s${this.twist === 'none' ? '' : `, ${this.twist}`})`;
  }
}

/** A confirm or release, sometimes followed by a second one on the same hold. */
class ResolveHold implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly hold: number,
    readonly pool: HoldPool,
    readonly target: HoldTarget,
    readonly steps: ResolveStep[],
  ) {}
  /** Misaddressed and unknown holds are the `target`'s business: wait for a hold of the pool. */
  check = (m: Readonly<World>) =>
    this.pool === 'pending' ? m.ref.pendingHolds().length > 0 : m.ref.holds.length > 0;
  async run(m: World, r: Real) {
    const { organization, project, id, hold } = addressHold(m, this.hold, this.pool, this.target);
    for (const [round, step] of this.steps.entries()) {
      const ifGeneration = generationOf(step.ifGeneration, hold?.generation ?? 1);
      const where = `(${organization}, ${project}, ${id}${hold ? ` [${m.ref.statusOf(hold)}, expires +${hold.expiresAtMs - r.clock.nowMs()} ms]` : ''}`;
      let actual: Awaited<ReturnType<typeof attempt<Hold>>>;
      let expected: Outcome<HoldView>;
      let call: string;
      if (step.op === 'confirm') {
        const lines = confirmLines(m, hold, step.mode);
        call = `confirmHold${where}, ${lines === undefined ? 'all' : show(lines)}, {ifGeneration: ${ifGeneration}}) #${round + 1}`;
        actual = await attempt(() =>
          r.ledger.confirmHold(organization, project, id, lines === undefined ? {} : { allocations: lines }, {
            ifGeneration,
          }),
        );
        expected = m.ref.confirmHold(organization, project, id, lines, ifGeneration);
      } else {
        call = `releaseHold${where}, {ifGeneration: ${ifGeneration}}) #${round + 1}`;
        actual = await attempt(() => r.ledger.releaseHold(organization, project, id, { ifGeneration }));
        expected = m.ref.releaseHold(organization, project, id, ifGeneration);
      }
      expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
      if (actual.ok && expected.ok) expect(actualHoldView(actual.value), call).toEqual(expected.value);
      await checkState(m, r);
    }
  }
  toString() {
    const steps = this.steps.map((s) =>
      s.op === 'confirm'
        ? `confirm ${s.mode}${s.ifGeneration === 'none' ? '' : ` ifGeneration ${s.ifGeneration}`}`
        : `release${s.ifGeneration === 'none' ? '' : ` ifGeneration ${s.ifGeneration}`}`,
    );
    return `resolveHold(#${this.hold} of ${this.pool}, ${this.target}, ${steps.join(' then ')})`;
  }
}

/**
 * Moves the clock: a little, to a hold's expiry (1 ms before, exactly at, 1 ms after), or past
 * every hold. Then sometimes sweeps, sometimes not: unswept, the stored counters still carry
 * the expired holds, and the next decision must resolve them first and not count them.
 */
type Advance = { to: 'small'; ms: number } | { to: 'expiry'; hold: number; offset: number } | { to: 'past-all' };
const advance: fc.Arbitrary<Advance> = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 5000 }).map((ms) => ({ to: 'small' as const, ms })), weight: 2 },
  {
    arbitrary: fc.record({
      to: fc.constant('expiry' as const),
      hold: fc.nat(),
      offset: fc.constantFrom(-1, 0, 0, 1),
    }),
    weight: 4,
  },
  { arbitrary: fc.constant({ to: 'past-all' as const }), weight: 1 },
);

class AdvanceClock implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly advance: Advance,
    readonly sweep: boolean,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const now = r.clock.nowMs();
    let ms = 1000;
    if (this.advance.to === 'small') ms = this.advance.ms;
    else if (this.advance.to === 'past-all') ms = ttlSecondsMax * 1000 + 1;
    else {
      const pending = m.ref.pendingHolds();
      if (pending.length > 0) {
        const hold = pending[this.advance.hold % pending.length]!;
        ms = Math.max(0, hold.expiresAtMs + this.advance.offset - now);
      }
    }
    r.clock.advance(ms);
    if (this.sweep) {
      const expected = m.ref.sweep();
      expect(await r.ledger.sweepExpiredHolds(), `sweepExpiredHolds() after +${ms} ms`).toBe(expected);
    }
    await checkState(m, r);
  }
  toString() {
    const to =
      this.advance.to === 'small'
        ? `+${this.advance.ms} ms`
        : this.advance.to === 'past-all'
          ? 'past every hold'
          : `to expiry of pending hold #${this.advance.hold} ${this.advance.offset >= 0 ? '+' : ''}${this.advance.offset} ms`;
    return `advanceClock(${to}${this.sweep ? ', then sweep' : ''})`;
  }
}

/**
 * A cap or guarantee: none, an absolute quantity, or one relative to the project's usage or
 * (for a guarantee) to the most the organization's limit leaves for it, so they land just
 * below, at or above the edges.
 */
type ProjectQuotaSpec = null | { absolute: number } | { usage: number } | { room: number };
const projectQuotaSpec: fc.Arbitrary<ProjectQuotaSpec> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 2 },
  { arbitrary: fc.nat(12).map((absolute) => ({ absolute })), weight: 1 },
  { arbitrary: fc.integer({ min: -1, max: 2 }).map((usage) => ({ usage })), weight: 2 },
  { arbitrary: fc.integer({ min: -2, max: 1 }).map((room) => ({ room })), weight: 2 },
);

class SetProjectQuotas implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly organization: number,
    readonly project: number,
    readonly entries: { kind: number; cap: ProjectQuotaSpec; guaranteed: ProjectQuotaSpec }[],
    readonly force: boolean,
    readonly unknownKind: boolean,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const organization = m.organizations[this.organization]!;
    const project = projectIds[this.project]!;
    const inputs: { kind: string; cap: number | null; guaranteed: number | null }[] = [];
    for (const entry of this.entries) {
      const kind = m.kinds[entry.kind % m.kinds.length]!;
      if (inputs.some((input) => input.kind === kind)) continue;
      const used = m.ref.projectUsedOf(organization, project, kind);
      const limit = m.ref.limitOf(organization, kind);
      const othersGuaranteed = m.ref.guaranteedOf(organization, kind) - m.ref.projectQuotaOf(organization, project, kind).guaranteed;
      const resolve = (spec: ProjectQuotaSpec) =>
        spec === null
          ? null
          : 'absolute' in spec
            ? spec.absolute
            : 'usage' in spec
              ? Math.max(0, used + spec.usage)
              : limit === unlimited
                ? used
                : Math.max(0, limit - othersGuaranteed + spec.room);
      inputs.push({ kind, cap: resolve(entry.cap), guaranteed: resolve(entry.guaranteed) });
    }
    if (this.unknownKind) inputs.push({ kind: `${m.prefix}-nokind`, cap: 5, guaranteed: null });
    const call = `setProjectQuotaSet(${organization}, ${project}, ${show(inputs)}, {force: ${this.force}})`;
    const actual = await attempt(() => r.ledger.setProjectQuotaSet(organization, project, inputs, { force: this.force }));
    const expected = m.ref.setProjectQuotas(organization, project, inputs, this.force);
    expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
    await checkState(m, r);
  }
  toString() {
    return `setProjectQuotas(o${this.organization}, p${this.project}, ${show(this.entries)}, force=${this.force}${this.unknownKind ? ', +unknown kind' : ''})`;
  }
}

/** Deletes a project (with or without cascade), then sometimes puts it again, empty. */
class DeleteProject implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly organization: number,
    readonly project: number,
    readonly cascade: boolean,
    readonly recreate: boolean,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const organization = m.organizations[this.organization]!;
    const project = projectIds[this.project]!;
    const call = `deleteProject(${organization}, ${project}, {cascade: ${this.cascade}})`;
    const actual = await attempt(() => r.ledger.deleteProject(organization, project, { cascade: this.cascade }));
    const expected = m.ref.deleteProject(organization, project, this.cascade);
    expect(normalizeActual(actual), call).toEqual(normalizeExpected(expected));
    if (actual.ok && expected.ok) expect(actual.value, call).toEqual(expected.value);
    await checkState(m, r);
    if (this.recreate && !m.ref.hasProject(organization, project)) {
      const { created } = await r.ledger.putProject(organization, project, {});
      expect(created, `putProject(${organization}, ${project}) after its deletion`).toBe(true);
      m.ref.addProject(organization, project);
      await checkState(m, r);
    }
  }
  toString() {
    return `deleteProject(o${this.organization}, p${this.project}${this.cascade ? ', cascade' : ''}${this.recreate ? ', then put it again' : ''})`;
  }
}

// Decisions queued at once: several library calls in one tick (they share a group, in the
// order they were made), or one batch (independent, or atomic: all or none). Each is prepared
// from the model as it is before any of them runs, then fired; the model then decides them in
// the same order and every answer is compared, and the state checked once all have committed.

type StepSpec =
  | { kind: 'create'; o: number; p: number; resource: ResourceSpec; lines: LineSpec[]; twist: Twist }
  | { kind: 'hold'; o: number; p: number; resource: ResourceSpec; lines: LineSpec[]; ttl: number; twist: Twist }
  | { kind: 'delete'; a: number; anyKnown: boolean; target: Target; gen: GenerationSpec }
  | { kind: 'resolve'; h: number; pool: HoldPool; target: HoldTarget; step: ResolveStep };

type Actual = { ok: true; value: any } | { ok: false; error: AllotError } | { notApplied: true };

interface Step {
  label: string;
  organization: string;
  /** A refusal of the input itself (found before any decision). */
  malformed: boolean;
  fire(r: Real): Promise<Actual>;
  /** The same decision as an entry of a batch of `organization`. */
  entry: BatchEntry;
  /** Decides it in the model; the expected outcome, to compare with `actual`. */
  decide(m: World, actual: Actual, index: number): { expected: Normalized; view?: unknown; actualView?: unknown };
}

const idOf = (actual: Actual, index: number) => ('ok' in actual && actual.ok ? (actual.value as { id: string }).id : `not-applied-${index}`);

function stepOf(m: World, spec: StepSpec): Step {
  switch (spec.kind) {
    case 'create':
    case 'hold': {
      const organization = m.organizations[spec.o]!;
      const project = projectIds[spec.p]!;
      const resource = resourceOf(spec.resource);
      const allocations = linesOf(m, organization, project, spec.lines, spec.twist);
      const malformed = spec.twist === 'repeated-kind';
      if (spec.kind === 'create') {
        return {
          label: `createAllocation(${organization}, ${project}, ${show(resource)}, ${show(allocations)})`,
          organization,
          malformed,
          fire: (r) => attempt(() => r.ledger.createAllocation(organization, project, { resource, allocations })),
          entry: { op: 'allocation.create', project, body: { resource, allocations } },
          decide: (mm, actual, index) => {
            const expected = mm.ref.createAllocation(organization, project, idOf(actual, index), resource, allocations);
            return {
              expected: normalizeExpected(expected),
              ...(expected.ok && 'ok' in actual && actual.ok
                ? { view: allocationView(expected.value), actualView: pick(actual.value, ['id', 'organization', 'project', 'resource', 'allocations', 'generation']) }
                : {}),
            };
          },
        };
      }
      const ttlSeconds = spec.ttl;
      return {
        label: `createHold(${organization}, ${project}, ${show(resource)}, ${show(allocations)}, ttl ${ttlSeconds} s)`,
        organization,
        malformed,
        fire: (r) => attempt(() => r.ledger.createHold(organization, project, { resource, allocations, ttlSeconds })),
        entry: { op: 'hold.create', project, body: { resource, allocations, ttlSeconds } },
        decide: (mm, actual, index) => {
          const expected = mm.ref.createHold(organization, project, idOf(actual, index), resource, allocations, ttlSeconds);
          return {
            expected: normalizeExpected(expected),
            ...(expected.ok && 'ok' in actual && actual.ok ? { view: expected.value, actualView: actualHoldView(actual.value) } : {}),
          };
        },
      };
    }
    case 'delete': {
      const { organization, project, id, allocation } = address(m, spec.a, spec.anyKnown, spec.target);
      const ifGeneration = generationOf(spec.gen, allocation?.generation ?? 1);
      return {
        label: `deleteAllocation(${organization}, ${project}, ${id}, {ifGeneration: ${ifGeneration}})`,
        organization,
        malformed: false,
        fire: (r) => attempt(() => r.ledger.deleteAllocation(organization, project, id, { ifGeneration })),
        entry: { op: 'allocation.delete', project, id, ...(ifGeneration === undefined ? {} : { ifGeneration }) },
        decide: (mm, actual) => {
          const expected = mm.ref.deleteAllocation(organization, project, id, ifGeneration);
          return {
            expected: normalizeExpected(expected),
            ...(expected.ok && 'ok' in actual && actual.ok ? { view: expected.value, actualView: actual.value } : {}),
          };
        },
      };
    }
    case 'resolve': {
      const { organization, project, id, hold } = addressHold(m, spec.h, spec.pool, spec.target);
      const ifGeneration = generationOf(spec.step.ifGeneration, hold?.generation ?? 1);
      const holdJudge = (expected: Outcome<HoldView>, actual: Actual) => ({
        expected: normalizeExpected(expected),
        ...(expected.ok && 'ok' in actual && actual.ok ? { view: expected.value, actualView: actualHoldView(actual.value) } : {}),
      });
      if (spec.step.op === 'confirm') {
        const lines = confirmLines(m, hold, spec.step.mode);
        return {
          label: `confirmHold(${organization}, ${project}, ${id}, ${lines === undefined ? 'all' : show(lines)}, {ifGeneration: ${ifGeneration}})`,
          organization,
          malformed: spec.step.mode === 'repeated-kind',
          fire: (r) => attempt(() => r.ledger.confirmHold(organization, project, id, lines === undefined ? {} : { allocations: lines }, { ifGeneration })),
          entry: {
            op: 'hold.confirm',
            project,
            id,
            body: lines === undefined ? {} : { allocations: lines },
            ...(ifGeneration === undefined ? {} : { ifGeneration }),
          },
          decide: (mm, actual) => holdJudge(mm.ref.confirmHold(organization, project, id, lines, ifGeneration), actual),
        };
      }
      return {
        label: `releaseHold(${organization}, ${project}, ${id}, {ifGeneration: ${ifGeneration}})`,
        organization,
        malformed: false,
        fire: (r) => attempt(() => r.ledger.releaseHold(organization, project, id, { ifGeneration })),
        entry: { op: 'hold.release', project, id, ...(ifGeneration === undefined ? {} : { ifGeneration }) },
        decide: (mm, actual) => holdJudge(mm.ref.releaseHold(organization, project, id, ifGeneration), actual),
      };
    }
  }
}

const pick = (value: Record<string, unknown>, names: readonly string[]) => Object.fromEntries(names.map((name) => [name, value[name]]));

function compare(step: Step, actual: Actual, judged: ReturnType<Step['decide']>, where: string): void {
  const normalized = 'notApplied' in actual ? { notApplied: true } : normalizeActual(actual.ok ? { ok: true } : actual);
  // A duplicate of an allocation an earlier entry of the same atomic batch made (and that was
  // undone with it): the ledger names its id, which the model never learned.
  const expected = judged.expected;
  if (!expected.ok && typeof expected.existingAllocationId === 'string' && expected.existingAllocationId.startsWith('not-applied-')) {
    expected.existingAllocationId = expect.any(String);
  }
  expect(normalized, `${where}: ${step.label}`).toEqual(expected);
  if (judged.view !== undefined) expect(judged.actualView, `${where}: ${step.label}`).toEqual(judged.view);
}

/** The principal of the model's keyed decisions, and the response it stores for an outcome. */
const keyPrincipal = 'model-keys';
const responseOf = (outcomes: readonly OperationOutcome[]) => {
  const [outcome] = outcomes;
  return outcome!.status === 'applied'
    ? { status: 200, headers: {}, body: { id: (outcome!.value as { id?: string } | undefined)?.id ?? null } }
    : { status: 409, headers: {}, body: { code: outcome!.status === 'refused' ? outcome!.error.code : 'not-applied' } };
};

/**
 * A decision sent as the API sends one with an `Idempotency-Key`: through the group commit,
 * which stores its response in the decision's own transaction, refusals included. A malformed
 * one is refused before it is decided (and stores nothing).
 */
async function fireKeyed(r: Real, step: Step, key: string, requestHash = step.label) {
  const prepared = prepareEntry(step.organization, step.entry);
  if ('error' in prepared) return { actual: { ok: false, error: prepared.error } as Actual, outcome: undefined };
  const outcome = await r.ledger.decide({
    operations: [prepared.operation],
    mode: 'independent',
    principal: keyPrincipal,
    idempotency: { key, requestHash, respond: responseOf },
  });
  if (outcome.kind !== 'decided') return { actual: undefined, outcome };
  const [result] = outcome.outcomes;
  const actual: Actual = result!.status === 'applied' ? { ok: true, value: result!.value } : result!.status === 'refused' ? { ok: false, error: result!.error } : { notApplied: true };
  return { actual, outcome };
}

/**
 * Several calls made in one tick: they are decided in one group, in the order they were made.
 * Some carry idempotency keys: each stored response must be the model's outcome, a retry in
 * one group with others must get it again and change nothing, and another request under the
 * key is refused.
 */
class Concurrently implements fc.AsyncCommand<World, Real> {
  constructor(readonly specs: { spec: StepSpec; keyed: boolean }[]) {}
  check = () => true;
  async run(m: World, r: Real) {
    const steps = this.specs.map(({ spec }) => stepOf(m, spec));
    const keys = this.specs.map(({ keyed }) => (keyed ? `${m.prefix}-key-${(m.keysUsed += 1)}` : undefined));
    const fired = await Promise.all(
      steps.map(async (step, i) => (keys[i] === undefined ? { actual: await step.fire(r), outcome: undefined } : fireKeyed(r, step, keys[i]!))),
    );
    const actuals = fired.map(({ actual }, i) => {
      expect(actual, `concurrently #${i}: ${steps[i]!.label}: a fresh key is decided`).toBeDefined();
      return actual!;
    });
    const expected = steps.map((step, i) => {
      const judged = step.decide(m, actuals[i]!, i);
      compare(step, actuals[i]!, judged, `concurrently #${i}`);
      return judged.expected;
    });
    // The keyed decisions that were decided (a malformed one was refused before).
    const keyed = steps.flatMap((step, i) => (fired[i]!.outcome === undefined ? [] : [{ step, key: keys[i]!, expected: expected[i]!, first: fired[i]!.outcome }]));
    m.keysStored += keyed.length;
    if (keyed.length > 0) {
      // Every stored response is the model's outcome (refusals too), in the books already.
      const stored = await r.ledger.store.transaction((tx) =>
        tx.all<{ idempotency_key: string; state: string; status: number; body: string }>(
          `SELECT idempotency_key, state, status, body FROM idempotency_keys WHERE principal = ? AND idempotency_key IN (${keyed.map(() => '?').join(', ')})`,
          [keyPrincipal, ...keyed.map(({ key }) => key)],
        ),
      );
      for (const { step, key, expected: outcome } of keyed) {
        const row = stored.find((item) => item.idempotency_key === key);
        expect(row && { state: row.state, status: Number(row.status) }, `${step.label}: the response stored under its key`).toEqual({ state: 'done', status: outcome.ok ? 200 : 409 });
        if (!outcome.ok) expect(JSON.parse(row!.body), `${step.label}: the stored refusal`).toEqual({ code: outcome.code });
      }
      // Retries, all in one group: the first answers again, nothing decided twice; another
      // request under a key is refused.
      const again = await Promise.all(keyed.map(({ step, key }, i) => fireKeyed(r, step, key, i === 0 ? `${step.label} (another request)` : step.label)));
      keyed.forEach(({ step, first }, i) => {
        const outcome = again[i]!.outcome;
        if (i === 0) expect(outcome?.kind, `${step.label}: another request under its key`).toBe('reused');
        else expect(outcome, `${step.label}: its retry`).toEqual({ kind: 'replayed', response: responseOf((first as { outcomes: OperationOutcome[] }).outcomes) });
      });
      const [{ count }] = (await r.ledger.store.transaction((tx) =>
        tx.all<{ count: number }>('SELECT COUNT(*) AS count FROM idempotency_keys WHERE principal = ? AND idempotency_key LIKE ?', [keyPrincipal, `${m.prefix}-key-%`]),
      )) as [{ count: number }];
      expect(Number(count), 'idempotency records of this run').toBe(m.keysStored);
    }
    await checkState(m, r);
  }
  toString() {
    return `concurrently(${show(this.specs)})`;
  }
}

/** One batch of an organization's entries: each on its own, or all or none. */
class Batch implements fc.AsyncCommand<World, Real> {
  constructor(
    readonly organization: number,
    readonly specs: StepSpec[],
    readonly atomic: boolean,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const organization = m.organizations[this.organization]!;
    // Entries for another organization's resources stay in this batch: they name nothing here.
    const steps = this.specs.map((spec) => stepOf(m, spec)).filter((step) => step.organization === organization);
    if (steps.length === 0) return;
    const mode = this.atomic ? 'atomic' : 'independent';
    const result = await r.ledger.batch(organization, steps.map((step) => step.entry), { mode });
    expect(result.mode).toBe(mode);
    const actuals: Actual[] = result.results.map((outcome) =>
      outcome.status === 'applied' ? { ok: true, value: outcome.value } : outcome.status === 'refused' ? { ok: false, error: outcome.error } : { notApplied: true },
    );
    const where = `batch ${mode} of ${organization}`;
    if (!this.atomic) {
      steps.forEach((step, i) => compare(step, actuals[i]!, step.decide(m, actuals[i]!, i), `${where} #${i}`));
    } else {
      // A malformed entry refuses the batch before anything is decided; else the first refusal.
      const malformed = steps.findIndex((step) => step.malformed);
      const saved = m.ref.snapshot();
      let refused = malformed;
      const judged = steps.map((step, i) => {
        if (refused >= 0) return null;
        const decided = step.decide(m, actuals[i]!, i);
        if (!decided.expected.ok) refused = i;
        return decided;
      });
      if (refused >= 0) {
        m.ref.restore(saved);
        if (malformed >= 0) judged[malformed] = { expected: { ok: false, code: 'invalid-request' } };
        steps.forEach((step, i) =>
          i === refused ? compare(step, actuals[i]!, judged[i]!, `${where} #${i} (refused)`) : expect(actuals[i], `${where} #${i}: ${step.label}`).toEqual({ notApplied: true }),
        );
      } else {
        steps.forEach((step, i) => compare(step, actuals[i]!, judged[i]!, `${where} #${i}`));
      }
    }
    await checkState(m, r);
  }
  toString() {
    return `batch(o${this.organization}, ${this.atomic ? 'atomic' : 'independent'}, ${show(this.specs)})`;
  }
}

const stepSpec: fc.Arbitrary<StepSpec> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant('create' as const), o: organizationIndex, p: fc.nat(1), resource: resourceSpec, lines: lineSpecs, twist }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('hold' as const),
      o: organizationIndex,
      p: fc.nat(1),
      resource: resourceSpec,
      lines: lineSpecs,
      ttl: fc.integer({ min: 1, max: ttlSecondsMax }),
      twist,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), a: fc.nat(), anyKnown, target, gen: generationSpec }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('resolve' as const), h: fc.nat(), pool: holdPool, target: holdTarget, step: resolveStep }), weight: 2 },
);

const concurrently = fc
  .array(fc.record({ spec: stepSpec, keyed: fc.boolean() }), { minLength: 2, maxLength: 6 })
  .map((specs) => new Concurrently(specs));
const batch = fc
  .tuple(organizationIndex, fc.array(stepSpec, { minLength: 1, maxLength: 6 }), fc.boolean())
  .map(([o, specs, atomic]) => new Batch(o, specs, atomic));

const setProjectQuotas = fc
  .tuple(
    organizationIndex,
    fc.nat(1),
    fc.uniqueArray(fc.record({ kind: kindIndex, cap: projectQuotaSpec, guaranteed: projectQuotaSpec }), {
      minLength: 1,
      maxLength: 2,
      selector: (entry) => entry.kind,
    }),
    fc.boolean(),
    fc.nat(19).map((n) => n === 0),
  )
  .map(([o, p, entries, force, unknownKind]) => new SetProjectQuotas(o, p, entries, force, unknownKind));

const deleteProject = fc
  .tuple(organizationIndex, fc.nat(1), fc.nat(2).map((n) => n > 0), fc.nat(2).map((n) => n > 0))
  .map(([o, p, cascade, recreate]) => new DeleteProject(o, p, cascade, recreate));

const setQuotas = fc
  .tuple(
    organizationIndex,
    fc.uniqueArray(fc.record({ kind: kindIndex, quantity: quotaQuantity }), {
      minLength: 1,
      maxLength: 3,
      selector: (entry) => entry.kind,
    }),
    fc.boolean(),
    fc.nat(19).map((n) => n === 0),
  )
  .map(([o, entries, force, unknownKind]) => new SetQuotas(o, entries, force, unknownKind));

const createAllocation = fc
  .tuple(organizationIndex, fc.nat(1), resourceSpec, lineSpecs, twist)
  .map(([o, p, resource, lines, how]) => new CreateAllocation(o, p, resource, lines, how));

const replaceAllocation = fc
  .tuple(fc.nat(), anyKnown, target, fc.option(resourceSpec, { freq: 2 }), lineMode, lineSpecs, twist, generationSpec)
  .map(
    ([a, all, how, resource, mode, lines, tw, gen]) =>
      new ReplaceAllocation(a, all, how, resource, mode, lines, tw, gen),
  );

const deleteAllocation = fc
  .tuple(fc.nat(), anyKnown, target, fc.nat(3).map((n) => n === 0), generationSpec)
  .map(([a, all, how, twice, gen]) => new DeleteAllocation(a, all, how, twice, gen));

const createHold = fc
  .tuple(organizationIndex, fc.nat(1), resourceSpec, lineSpecs, fc.integer({ min: 1, max: ttlSecondsMax }), twist)
  .map(([o, p, resource, lines, ttl, how]) => new CreateHold(o, p, resource, lines, ttl, how));

const resolveHold = fc
  .tuple(fc.nat(), holdPool, holdTarget, fc.array(resolveStep, { minLength: 1, maxLength: 2 }))
  .map(([h, all, how, steps]) => new ResolveHold(h, all, how, steps));

const advanceClock = fc
  .tuple(advance, fc.nat(3).map((n) => n === 0))
  .map(([to, sweep]) => new AdvanceClock(to, sweep));

// fc.commands picks uniformly among its arbitraries: listing one twice doubles its weight.
const commands = fc.commands(
  [
    setQuotas,
    setQuotas,
    setProjectQuotas,
    setProjectQuotas,
    deleteProject,
    createAllocation,
    createAllocation,
    replaceAllocation,
    deleteAllocation,
    createHold,
    createHold,
    createHold,
    resolveHold,
    resolveHold,
    resolveHold,
    advanceClock,
    advanceClock,
    advanceClock,
    concurrently,
    concurrently,
    batch,
    batch,
  ],
  { maxCommands, size: 'max' },
);

const setup = fc.record({
  /**
   * Give every project a counter row of every kind up front (a project quota with no cap and no
   * guarantee). PostgreSQL decides in one statement only for a project that already has the
   * kind's row; without it the general path runs. Runs with and without cover both.
   */
  warm: fc.boolean(),
  kindCount: fc.constantFrom(2, 3),
  unlimitedAt: fc.nat(2),
  defaults: fc.array(
    fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: 1, max: 8 }), weight: 4 }),
    { minLength: 3, maxLength: 3 },
  ),
});

for (const engine of engines) {
  describe(`ledger against the reference model (${engine})`, () => {
    let database: TestDatabase;
    let ledger: Ledger;
    const clock = new ManualClock();
    const late: string[] = [];
    let runs = 0;

    beforeAll(async () => {
      database = await createTestDatabase(engine);
      ledger = await openLedger({ db: watchedStore(openStore(database.url), late), clock });
    });

    afterAll(async () => {
      if (!database) return;
      try {
        // Every run's organizations at once: nothing drifted anywhere.
        if (ledger) expect(await ledger.verifyCounters()).toEqual([]);
      } finally {
        await ledger?.close();
        await database.drop();
      }
    });

    it('decides every operation as the model does and keeps the books', async () => {
      await fc.assert(
        fc.asyncProperty(setup, commands, async ({ warm, kindCount, unlimitedAt, defaults }, cmds) => {
          runs += 1;
          const prefix = `m${runs}`;
          // Earlier runs' holds (a failed run's too) expire and are swept, so a sweep in this
          // run resolves this run's holds only.
          clock.advance(ttlSecondsMax * 1000 + 1);
          await ledger.sweepExpiredHolds();
          const world: World = {
            ref: new ReferenceModel(clock),
            prefix,
            kinds: [],
            organizations: [],
            startMs: clock.nowMs(),
            keysUsed: 0,
            keysStored: 0,
          };
          for (let k = 0; k < kindCount; k += 1) {
            const name = `${prefix}-${'abc'[k]}`;
            const kindDefault = k === unlimitedAt % kindCount ? null : defaults[k]!;
            await ledger.putKind(name, { displayName: name, default: kindDefault });
            world.ref.addKind(name, kindDefault);
            world.kinds.push(name);
          }
          for (const o of [0, 1]) {
            const organization = `${prefix}-o${o}`;
            await ledger.putOrganization(organization, {});
            world.organizations.push(organization);
            for (const project of projectIds) {
              await ledger.putProject(organization, project, {});
              world.ref.addProject(organization, project);
              if (warm) {
                const none = world.kinds.map((kind) => ({ kind, cap: null, guaranteed: null }));
                await ledger.setProjectQuotaSet(organization, project, none);
                expect(world.ref.setProjectQuotas(organization, project, none, false).ok).toBe(true);
              }
            }
          }
          late.length = 0;
          const real: Real = { ledger, clock, late };
          await checkState(world, real);
          await fc.asyncModelRun(() => ({ model: world, real }), cmds);
          await checkAllocations(world, real);
        }),
        { numRuns, ...(process.env.MODEL_SEED ? { seed: Number(process.env.MODEL_SEED), ...(process.env.MODEL_PATH ? { path: process.env.MODEL_PATH } : {}) } : {}) },
      );
    }, 300_000);
  });
}
