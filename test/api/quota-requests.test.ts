// Goal: quota requests behave as documented over HTTP on both engines: pending until
// approved (possibly for less), denied, cancelled or expired; one open request per
// organization, scope and kind (a second is 409 naming the open one; a retry with the same
// Idempotency-Key gets the first answer); an approval applies the change through the quota
// rules in the same transaction (refused: the request stays pending); decreases by whoever may
// set the value apply at once, past the safety check only with force; the policy approves
// small increases at most N per period; a long poll answers when the request leaves pending;
// every change is in the journal.
// Method: the app through `app.inject` on a ledger with a ManualClock; answers checked against
// the OpenAPI document by the harness.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { engines, ManualClock, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken } from './harness.js';
import { call } from './harness-extra.js';

const org = '/v1/organizations/acme';
const requests = `${org}/quota-requests`;
const asking = { justification: 'a new training cluster', contact: 'ml-infra@example.com' };

describe.each(engines)('quota requests on %s', (engine) => {
  let test: TestLedger;
  let app: FastifyInstance;
  let clock: ManualClock;
  let kinds = 0;
  /** A kind of its own for each test: one open request per kind. */
  const freshKind = async (quota = 100) => {
    const kind = `k${(kinds += 1)}`;
    await test.ledger.putKind(kind, { displayName: kind });
    await test.ledger.setQuotas('acme', [{ kind, quantity: quota }]);
    return kind;
  };
  const quotaOf = async (kind: string) => (await test.ledger.getQuotaSet('acme')).quotas.find((quota) => quota.kind === kind)!.quantity;
  const member = { authorization: '' };

  beforeAll(async () => {
    clock = new ManualClock();
    test = await openTestLedger(engine, clock);
    app = await buildApp({ ledger: test.ledger, adminToken });
    await test.ledger.putOrganization('acme', {});
    await test.ledger.putProject('acme', 'web', {});
    await test.ledger.putProject('acme', 'batch', {});
    const { token } = await test.ledger.createToken({ role: 'project-member', organization: 'acme', project: 'web' });
    member.authorization = `Bearer ${token}`;
  });

  afterAll(async () => {
    await app.close();
    await test.close();
  });

  it('files a request, refuses a second for the same kind naming the first, and approves it for less', async () => {
    const kind = await freshKind();
    const filed = await call(app, 'POST', requests, { kind, scope: 'project', project: 'web', field: 'cap', preferred: 40, ...asking }, member);
    expect(filed.status).toBe(201);
    expect(filed.json).toMatchObject({ state: 'pending', scope: 'project', project: 'web', field: 'cap', preferred: 40, current: null, granted: null });
    const second = await call(app, 'POST', requests, { kind, scope: 'project', project: 'web', field: 'cap', preferred: 50, ...asking }, member);
    expect(second.status).toBe(409);
    expect(second.json).toMatchObject({ type: '/problems/quota-request-open', openRequest: filed.json.id });
    expect((await call(app, 'GET', `${requests}?state=pending`)).json.items.map((r: { id: string }) => r.id)).toContain(filed.json.id);
    const approved = await call(app, 'POST', `${requests}/${filed.json.id}/approve`, { granted: 30 });
    expect(approved.json).toMatchObject({ state: 'approved', granted: 30, decidedBy: 'admin' });
    expect((await test.ledger.getProjectQuotaSet('acme', 'web')).quotas.find((q) => q.kind === kind)!.cap).toBe(30);
    const again = await call(app, 'POST', `${requests}/${filed.json.id}/approve`, {});
    expect(again.json).toMatchObject({ type: '/problems/quota-request-resolved', state: 'approved' });
    const actions = (await test.ledger.readJournal('acme', 0, 1000)).filter((entry) => entry.subject === filed.json.id).map((entry) => entry.action);
    expect(actions).toEqual(['quota-request.created', 'quota-request.approved']);
  });

  it('a retry with the same Idempotency-Key gets the first answer', async () => {
    const kind = await freshKind();
    const body = { kind, scope: 'organization', preferred: 200, ...asking };
    const first = await call(app, 'POST', requests, body, { 'idempotency-key': `file-${kind}` });
    const retry = await call(app, 'POST', requests, body, { 'idempotency-key': `file-${kind}` });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json.id).toBe(first.json.id);
  });

  it('an approval the quota rules refuse leaves the request pending', async () => {
    const kind = await freshKind(10);
    // batch uses 8 of 10: a guarantee of 5 for web could not be met.
    await test.ledger.createAllocation('acme', 'batch', { resource: { kind: 'vm', id: `${kind}-1` }, allocations: [{ kind, committed: 8, reserved: 0 }] });
    const filed = await call(app, 'POST', requests, { kind, scope: 'project', project: 'web', field: 'guaranteed', preferred: 5, ...asking }, member);
    const refused = await call(app, 'POST', `${requests}/${filed.json.id}/approve`, {});
    expect(refused.status).toBe(409);
    expect(refused.json.type).toBe('/problems/guarantee-unavailable');
    expect((await call(app, 'GET', `${requests}/${filed.json.id}`)).json.state).toBe('pending');
    const forced = await call(app, 'POST', `${requests}/${filed.json.id}/approve?force=true`, {});
    expect(forced.json.state).toBe('approved');
  });

  it('applies a decrease by whoever may set the value at once; past the safety check only with force', async () => {
    const kind = await freshKind(100);
    const small = await call(app, 'POST', requests, { kind, scope: 'organization', preferred: 80, ...asking });
    expect(small.json).toMatchObject({ state: 'approved', granted: 80, decidedBy: 'admin', current: 100 });
    expect(await quotaOf(kind)).toBe(80);
    const deep = await call(app, 'POST', requests, { kind, scope: 'organization', preferred: 10, ...asking });
    expect(deep.json.type).toBe('/problems/decrease-needs-force');
    expect(await quotaOf(kind)).toBe(80);
    expect((await call(app, 'POST', `${requests}?force=true`, { kind, scope: 'organization', preferred: 10, ...asking })).json.state).toBe('approved');
    expect(await quotaOf(kind)).toBe(10);
  });

  it('approves small increases by policy, at most N per period, and waits for a person past that', async () => {
    const kind = await freshKind(100);
    const policy = await call(app, 'PUT', `/v1/resource-kinds/${kind}/request-policy`, {
      autoApprove: { maxIncreasePercent: 10, perPeriod: 2, periodSeconds: 3600 },
    });
    expect(policy.json).toMatchObject({ autoApprove: { maxIncreasePercent: 10, perPeriod: 2 }, decreaseMaxPercent: 50 });
    const ask = (preferred: number) => call(app, 'POST', requests, { kind, scope: 'organization', preferred, ...asking }, member);
    // A project-member may not ask for the organization's quota.
    expect((await ask(105)).status).toBe(403);
    const asAdmin = (preferred: number) => test.ledger.createQuotaRequest('acme', { kind, scope: 'organization', preferred, ...asking }, { principal: 'ops', mayApply: false });
    expect((await asAdmin(105)).decidedBy).toBe('policy');
    expect((await asAdmin(115)).state).toBe('approved');
    const third = await asAdmin(120);
    expect(third.state).toBe('pending'); // Two in the hour already.
    await test.ledger.cancelQuotaRequest('acme', third.id);
    expect((await asAdmin(200)).state).toBe('pending'); // Too large for the policy.
    expect(await quotaOf(kind)).toBe(115);
  });

  it('answers a long poll when the request leaves pending, or as it is when the time is up', async () => {
    const kind = await freshKind();
    const filed = await test.ledger.createQuotaRequest('acme', { kind, scope: 'organization', preferred: 150, ...asking }, { mayApply: false });
    const started = Date.now();
    const waiting = call(app, 'GET', `${requests}/${filed.id}?wait=20s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await test.ledger.denyQuotaRequest('acme', filed.id, 'not this quarter');
    const answered = await waiting;
    expect(answered.json).toMatchObject({ state: 'denied', reason: 'not this quarter' });
    expect(Date.now() - started).toBeLessThan(10_000);
    const other = await freshKind();
    const pending = await test.ledger.createQuotaRequest('acme', { kind: other, scope: 'organization', preferred: 150, ...asking }, { mayApply: false });
    expect((await call(app, 'GET', `${requests}/${pending.id}?wait=1s`)).json.state).toBe('pending');
  });

  it('expires a request pending past its time, which then cannot be approved', async () => {
    const kind = await freshKind();
    await test.ledger.putRequestPolicy(kind, { expiresAfterSeconds: 60 });
    const filed = await test.ledger.createQuotaRequest('acme', { kind, scope: 'organization', preferred: 150, ...asking }, { mayApply: false });
    clock.advance(61_000);
    expect((await call(app, 'POST', `${requests}/${filed.id}/approve`, {})).json).toMatchObject({ type: '/problems/quota-request-resolved', state: 'expired' });
    expect(await test.ledger.expireQuotaRequests()).toBeGreaterThanOrEqual(1);
    expect((await call(app, 'GET', `${requests}/${filed.id}`)).json.state).toBe('expired');
    // No longer open: the kind may be asked for again.
    expect((await call(app, 'POST', requests, { kind, scope: 'organization', preferred: 150, ...asking })).status).toBe(201);
  });

  it.each([
    ['an organization request naming a project', { scope: 'organization', project: 'web', preferred: 5 }, 400],
    ['a project request without its field', { scope: 'project', project: 'web', preferred: 5 }, 400],
    ['an unknown project', { scope: 'project', project: 'nope', field: 'cap', preferred: 5 }, 404],
    ['the value in force', { scope: 'organization', preferred: 100 }, 400],
    ['an empty justification', { scope: 'organization', preferred: 5, justification: '' }, 400],
  ])('refuses %s and files nothing', async (_name, body, status) => {
    const kind = await freshKind(100);
    const answer = await call(app, 'POST', requests, { kind, ...asking, ...body });
    expect(answer.status).toBe(status);
    expect((await test.ledger.listQuotaRequests('acme', { limit: 1000 })).items.filter((r) => r.kind === kind)).toEqual([]);
  });
});
