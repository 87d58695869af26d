// Goal: quota requests follow their state machine on every engine: at most one open request
// per organization, scope and kind; every approval — by a person, by policy, or a decrease
// applied at once — changes the quota, cap or guarantee exactly as a direct change made at that
// moment would; nothing is applied twice; a request leaves pending once.
// Method: model-based property test. For each engine one ledger on a ManualClock; fast-check
// generates runs of up to 30 commands over two kinds (one with a policy approving increases up
// to 20, at most 2 per 10 minutes) and two scopes (the organization's quota, a project's cap):
// file a request (increases, decreases past and within the 50 % safety check, with and without
// force, by a requester who may or may not set the value, the value in force), approve (with
// and without a granted value), deny, cancel (of pending, resolved and expired requests), change
// a quota or cap directly, move the clock (past expiries, past the policy's period) and sweep or
// not. The model decides each command on its own; the test asserts the same outcome (the
// request's state and decider, or the same error code), then, after every step: the quotas and
// caps equal the model's; every request's state equals the model's; at most one request is
// pending per key; the journal holds one quota change per direct change and per approval, and
// one approval entry per approval. Each run uses fresh kinds and organization.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, ManualClock, type TestDatabase } from '../support/engines.js';

const numRuns = Number(process.env.REQUEST_MODEL_RUNS ?? 20);
const periodMs = 600_000;
const expiresMs = 300_000;
const asking = { justification: 'model', contact: 'model@example.com' };

type Scope = 'organization' | 'project';
type State = 'pending' | 'approved' | 'denied' | 'cancelled' | 'expired';
interface ModelRequest {
  id: string;
  kind: number;
  scope: Scope;
  state: State;
  expiresAtMs: number;
  preferred: number;
  decidedBy: string | null;
}

/** A value asked for: relative to the one in force (on the edges of the policy and the safety check), or any. */
const asked = fc.oneof(
  { weight: 4, arbitrary: fc.record({ relative: fc.constantFrom(-100, -60, -51, -50, -49, -10, -1, 0, 1, 5, 19, 20, 21, 50) }) },
  { weight: 1, arbitrary: fc.record({ absolute: fc.nat(200) }) },
);

const command = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('create' as const), kind: fc.nat(1), scope: fc.constantFrom<Scope>('organization', 'project'), asked, mayApply: fc.boolean(), force: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('approve' as const), pick: fc.nat(), granted: fc.option(fc.nat(200), { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deny' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('direct' as const), kind: fc.nat(1), scope: fc.constantFrom<Scope>('organization', 'project'), value: fc.nat(200) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1000, 100_000, expiresMs, periodMs), sweep: fc.boolean() }) },
);

class Model {
  /** Per kind: the organization's quota and the project's cap (null: none). */
  readonly quota = [100, 100];
  readonly cap: (number | null)[] = [null, null];
  readonly requests: ModelRequest[] = [];
  readonly policyAt: number[] = [];
  changes = 0;
  approvals = 0;
  constructor(public nowMs: number) {}

  valueOf(kind: number, scope: Scope) {
    return scope === 'organization' ? this.quota[kind]! : this.cap[kind]!;
  }
  set(kind: number, scope: Scope, value: number) {
    if (scope === 'organization') this.quota[kind] = value;
    else this.cap[kind] = value;
    this.changes += 1;
  }
  /** The outcome of filing: an error code, or the request's state and decider. */
  /** What a create asks for: relative to the value in force (none: to 100), never below 0. */
  preferredOf(c: { kind: number; scope: Scope; asked: { relative: number } | { absolute: number } }): number {
    if ('absolute' in c.asked) return c.asked.absolute;
    return Math.max(0, (this.valueOf(c.kind, c.scope) ?? 100) + c.asked.relative);
  }
  create(c: { kind: number; scope: Scope; preferred: number; mayApply: boolean; force: boolean }): string | { state: State; decidedBy: string | null } {
    const current = this.valueOf(c.kind, c.scope);
    if (current === c.preferred) return 'invalid-request';
    const decrease = current === null || c.preferred < current;
    const cut = current === null || current === 0 ? 0 : ((current - c.preferred) * 100) / current;
    if (decrease && cut > 50 && !c.force) return 'decrease-needs-force';
    if (this.requests.some((r) => r.state === 'pending' && r.kind === c.kind && r.scope === c.scope)) return 'quota-request-open';
    const recent = this.policyAt.filter((at) => at > this.nowMs - periodMs).length;
    const byPolicy = c.scope === 'organization' && c.kind === 0 && !decrease && c.preferred - current! <= 20 && recent < 2;
    const by = decrease && c.mayApply ? 'requester' : byPolicy ? 'policy' : null;
    if (by === null) return { state: 'pending', decidedBy: null };
    if (by === 'policy') this.policyAt.push(this.nowMs);
    this.set(c.kind, c.scope, c.preferred);
    this.approvals += 1;
    return { state: 'approved', decidedBy: by };
  }
  /** A request's fate when someone acts on it: null if it may be acted on, else how it ended. */
  settled(request: ModelRequest): State | null {
    if (request.state !== 'pending') return request.state;
    return request.expiresAtMs <= this.nowMs ? 'expired' : null;
  }
}

describe.each(engines)('quota requests against a model on %s', (engine) => {
  let database: TestDatabase;
  let ledger: Ledger;
  const clock = new ManualClock();

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    ledger = await openLedger({ db: database.url, clock });
  });
  afterAll(async () => {
    await ledger?.close();
    await database?.drop();
  });

  it('keeps one open request per key, applies each approval once as a direct change would', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 20, maxLength: 40 }), async (commands) => {
        runs += 1;
        const org = `o${runs}`;
        const kinds = [`o${runs}-a`, `o${runs}-b`];
        for (const kind of kinds) await ledger.putKind(kind, { displayName: kind });
        await ledger.putOrganization(org, {});
        await ledger.putProject(org, 'web', {});
        await ledger.setQuotas(org, kinds.map((kind) => ({ kind, quantity: 100 })));
        await ledger.putRequestPolicy(kinds[0]!, { autoApprove: { maxIncrease: 20, perPeriod: 2, periodSeconds: periodMs / 1000 }, expiresAfterSeconds: expiresMs / 1000 });
        await ledger.putRequestPolicy(kinds[1]!, { expiresAfterSeconds: expiresMs / 1000 });
        const model = new Model(clock.nowMs());
        const codeOf = (error: unknown) => (error instanceof AllotError ? error.code : String(error));
        for (const c of commands) {
          if (c.op === 'create') {
            const preferred = model.preferredOf(c);
            const expected = model.create({ ...c, preferred });
            const body = { kind: kinds[c.kind]!, preferred, ...asking };
            const input = c.scope === 'organization' ? { ...body, scope: 'organization' as const } : { ...body, scope: 'project' as const, project: 'web', field: 'cap' as const };
            const made = await ledger.createQuotaRequest(org, input, { principal: 'asker', mayApply: c.mayApply, force: c.force }).catch(codeOf);
            if (typeof expected === 'string') {
              expect(made).toBe(expected);
              continue;
            }
            if (typeof made === 'string') throw new Error(`expected ${expected.state}, got ${made}`);
            expect({ state: made.state, decidedBy: made.decidedBy }).toEqual({ ...expected, decidedBy: expected.decidedBy === 'requester' ? 'asker' : expected.decidedBy });
            model.requests.push({ id: made.id, kind: c.kind, scope: c.scope, state: made.state, expiresAtMs: Date.parse(made.expiresAt), preferred, decidedBy: made.decidedBy });
          } else if (c.op === 'approve' || c.op === 'deny' || c.op === 'cancel') {
            const request = model.requests[c.pick % Math.max(1, model.requests.length)];
            if (request === undefined) continue;
            const ended = model.settled(request);
            const act = () =>
              c.op === 'approve'
                ? ledger.approveQuotaRequest(org, request.id, c.granted === undefined ? {} : { granted: c.granted })
                : c.op === 'deny'
                  ? ledger.denyQuotaRequest(org, request.id, 'model says no')
                  : ledger.cancelQuotaRequest(org, request.id);
            const result = await act().then((r) => r.state, (error: unknown) => (error instanceof AllotError ? `${error.code}:${error.extensions.state}` : String(error)));
            if (ended !== null) {
              expect(result).toBe(`quota-request-resolved:${ended}`);
              continue;
            }
            const state: State = c.op === 'approve' ? 'approved' : c.op === 'deny' ? 'denied' : 'cancelled';
            expect(result).toBe(state);
            request.state = state;
            if (state === 'approved') {
              model.set(request.kind, request.scope, c.op === 'approve' && 'granted' in c && c.granted !== undefined ? c.granted : request.preferred);
              model.approvals += 1;
            }
          } else if (c.op === 'direct') {
            if (c.scope === 'organization') await ledger.setQuotas(org, [{ kind: kinds[c.kind]!, quantity: c.value }]);
            else await ledger.setProjectQuotaSet(org, 'web', [{ kind: kinds[c.kind]!, cap: c.value, guaranteed: 0 }]);
            model.set(c.kind, c.scope, c.value);
          } else {
            clock.advance(c.ms);
            model.nowMs = clock.nowMs();
            if (c.sweep) {
              await ledger.expireQuotaRequests();
              for (const request of model.requests) if (model.settled(request) === 'expired') request.state = 'expired';
            }
          }
          await checkBooks(ledger, org, kinds, model);
        }
      }),
      { numRuns, ...(process.env.REQUEST_MODEL_SEED ? { seed: Number(process.env.REQUEST_MODEL_SEED) } : {}) },
    );
  });
});

async function checkBooks(ledger: Ledger, org: string, kinds: readonly string[], model: Model) {
  const quotas = (await ledger.getQuotaSet(org)).quotas;
  const caps = (await ledger.getProjectQuotaSet(org, 'web')).quotas;
  kinds.forEach((kind, i) => {
    expect(quotas.find((q) => q.kind === kind)!.quantity, `${kind} quota`).toBe(model.quota[i]);
    expect(caps.find((q) => q.kind === kind)?.cap ?? null, `${kind} cap`).toBe(model.cap[i]);
  });
  const stored = (await ledger.listQuotaRequests(org, { limit: 1000 })).items;
  expect(stored.map((r) => [r.id, r.state])).toEqual(model.requests.map((r) => [r.id, r.state]));
  const open = stored.filter((r) => r.state === 'pending').map((r) => `${r.scope}/${r.kind}`);
  expect(new Set(open).size, 'one open request per key').toBe(open.length);
  const journal = await ledger.readJournal(org, 0, 1000);
  const count = (...actions: string[]) => journal.filter((entry) => actions.includes(entry.action)).length;
  // Setup made one quota change; each direct change and each approval made one more.
  expect(count('quota.set', 'project-quota.set')).toBe(1 + model.changes);
  expect(count('quota-request.approved')).toBe(model.approvals);
}
