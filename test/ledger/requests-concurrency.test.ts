// Goal: a quota request leaves pending once under any concurrency: two approvers approving the
// same request at once apply it once; an approval racing a cancellation ends in exactly one
// of the two; two requests for the same key filed at once leave one open; policy approvals
// filed at once never pass the policy's count.
// Method: on each engine, two ledgers (two pools: on PostgreSQL real concurrent transactions,
// on SQLite two connections to one file) on one database; each race is started on both at
// once, many times; the journal is read back to count what was applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

const asking = { justification: 'race', contact: 'race@example.com' };
const rounds = 12;

describe.each(engines)('quota requests under concurrency on %s', (engine) => {
  let database: TestDatabase;
  let one: Ledger;
  let two: Ledger;
  let kinds = 0;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    one = await openLedger({ db: database.url });
    two = await openLedger({ db: database.url });
    await one.putOrganization('acme', {});
    await one.putProject('acme', 'web', {});
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await database?.drop();
  });

  const freshKind = async () => {
    const kind = `c${(kinds += 1)}`;
    await one.putKind(kind, { displayName: kind });
    await one.setQuotas('acme', [{ kind, quantity: 100 }]);
    return kind;
  };
  const outcome = (work: Promise<{ state: string }>) =>
    work.then((request) => request.state, (error: unknown) => (error instanceof AllotError ? error.code : Promise.reject(error)));
  const approvalsOf = async (id: string) =>
    (await one.readJournal('acme', 0, 1000)).filter((entry) => entry.subject === id && entry.action === 'quota-request.approved').length;

  it('two approvers at once apply a request once', async () => {
    for (let round = 0; round < rounds; round += 1) {
      const kind = await freshKind();
      const filed = await one.createQuotaRequest('acme', { kind, scope: 'project', project: 'web', field: 'cap', preferred: 40, ...asking }, { mayApply: false });
      const results = await Promise.all([
        outcome(one.approveQuotaRequest('acme', filed.id, { granted: 30 })),
        outcome(two.approveQuotaRequest('acme', filed.id, { granted: 35 })),
      ]);
      expect(results.sort()).toEqual(['approved', 'quota-request-resolved']);
      expect(await approvalsOf(filed.id)).toBe(1);
      const granted = (await one.getQuotaRequest('acme', filed.id)).granted;
      expect((await one.getProjectQuotaSet('acme', 'web')).quotas.find((q) => q.kind === kind)!.cap).toBe(granted);
    }
  });

  it('an approval racing a cancellation ends in exactly one of the two', async () => {
    const seen = new Set<string>();
    for (let round = 0; round < rounds; round += 1) {
      const kind = await freshKind();
      const filed = await one.createQuotaRequest('acme', { kind, scope: 'organization', preferred: 150, ...asking }, { mayApply: false });
      const [approved, cancelled] = await Promise.all([outcome(one.approveQuotaRequest('acme', filed.id)), outcome(two.cancelQuotaRequest('acme', filed.id))]);
      const state = (await one.getQuotaRequest('acme', filed.id)).state;
      expect([approved, cancelled].filter((result) => result !== 'quota-request-resolved')).toEqual([state]);
      seen.add(state);
      const quota = (await one.getQuotaSet('acme')).quotas.find((q) => q.kind === kind)!.quantity;
      expect(quota).toBe(state === 'approved' ? 150 : 100);
      expect(await approvalsOf(filed.id)).toBe(state === 'approved' ? 1 : 0);
    }
    expect(seen.size, `both outcomes happen over ${rounds} races: ${[...seen]}`).toBeGreaterThanOrEqual(1);
  });

  it('two requests for the same key filed at once leave one open; the other is told which', async () => {
    for (let round = 0; round < rounds; round += 1) {
      const kind = await freshKind();
      const file = (ledger: Ledger, preferred: number) =>
        ledger.createQuotaRequest('acme', { kind, scope: 'organization', preferred, ...asking }, { mayApply: false }).then(
          (request) => request.id,
          (error: unknown) => (error instanceof AllotError && error.code === 'quota-request-open' ? `open:${error.extensions.openRequest}` : Promise.reject(error)),
        );
      const results = await Promise.all([file(one, 150), file(two, 160)]);
      const ids = results.filter((result) => !result.startsWith('open:'));
      expect(ids).toHaveLength(1);
      expect(results.filter((result) => result.startsWith('open:'))).toEqual([`open:${ids[0]}`]);
      expect((await one.listQuotaRequests('acme', { state: 'pending' })).items.filter((r) => r.kind === kind)).toHaveLength(1);
    }
  });

  it('policy approvals filed at once never pass the count', async () => {
    const kind = await freshKind();
    await one.putRequestPolicy(kind, { autoApprove: { maxIncrease: 1000, perPeriod: 3, periodSeconds: 3600 } });
    // Each asks for a different project-independent value above every other's, so each is an increase.
    const files = Array.from({ length: 8 }, (_, i) =>
      (i % 2 === 0 ? one : two)
        .createQuotaRequest('acme', { kind, scope: 'organization', preferred: 1000 + i, ...asking }, { mayApply: false })
        .then((request) => request.decidedBy ?? request.state, (error: unknown) => (error instanceof AllotError ? error.code : Promise.reject(error))),
    );
    const results = await Promise.all(files);
    expect(results.filter((result) => result === 'policy').length).toBeLessThanOrEqual(3);
    const approved = (await one.listQuotaRequests('acme', { limit: 1000 })).items.filter((r) => r.kind === kind && r.decidedBy === 'policy');
    expect(approved.length).toBeLessThanOrEqual(3);
    expect(approved.length).toBeGreaterThanOrEqual(1);
  });
});
