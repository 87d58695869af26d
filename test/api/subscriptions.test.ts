// Goal: the subscriptions API makes, shows, resumes and deletes subscriptions as documented;
// the secret is shown once; and every bad subscription (a target that could forge requests
// to the platform's own network, a malformed URL, thresholds that make no sense) is a clear
// 400 that leaves nothing behind, with the same answer on both engines.
// Method: the app through `app.inject` on each engine, answers checked against the OpenAPI
// document by the harness; after each refusal, the list of every subscription is compared.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { parseAllowList } from '../../src/webhooks/address.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken } from './harness.js';
import { call } from './harness-extra.js';

const base = '/v1/organizations/acme/subscriptions';
const hook = 'http://127.0.0.1:9/hook';

describe.each(engines)('subscriptions API on %s', (engine) => {
  let test: TestLedger;
  let app: FastifyInstance;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    app = await buildApp({ ledger: test.ledger, adminToken, webhookAllow: parseAllowList('127.0.0.0/8') });
    await test.ledger.putKind('gpus', { displayName: 'GPUs' });
    await test.ledger.putOrganization('acme', {});
    await test.ledger.putProject('acme', 'web', {});
    await test.ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 100 }]);
  });

  afterAll(async () => {
    await app.close();
    await test.close();
  });

  it('makes a subscription, shows its secret once, lists, resumes and deletes it', async () => {
    const body = {
      url: hook,
      journal: { actions: ['allocation.created'], kinds: ['gpus'] },
      thresholds: [
        { kind: 'gpus', scope: 'organization', at: [0.8, 0.95, 1] },
        { kind: 'gpus', scope: 'project', project: 'web', quantities: [10], hysteresis: 0.1 },
      ],
      denials: { intervalSeconds: 300 },
    };
    const created = await call(app, 'POST', base, body);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ ...body, organization: 'acme', state: 'active', createdBy: 'admin' });
    expect(created.json.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(created.json.deliveries).toEqual([
      expect.objectContaining({ organization: 'acme', revision: expect.any(Number), state: 'active', attempts: 0, lastError: null }),
    ]);
    const { id } = created.json;
    const shown = await call(app, 'GET', `${base}/${id}`);
    expect(shown.status).toBe(200);
    expect(shown.json.secret).toBeUndefined();
    expect(JSON.stringify((await call(app, 'GET', base)).json)).not.toContain(created.json.secret);
    expect((await call(app, 'GET', base)).json.items.map((item: { id: string }) => item.id)).toEqual([id]);
    expect((await call(app, 'POST', `${base}/${id}/resume`)).json).toMatchObject({ id, state: 'active' });
    expect((await call(app, 'DELETE', `${base}/${id}`)).status).toBe(204);
    expect((await call(app, 'GET', `${base}/${id}`)).status).toBe(404);
    expect((await call(app, 'DELETE', `${base}/${id}`)).status).toBe(404);
  });

  it("subscribes to every organization at /v1/subscriptions; an organization's path does not show it", async () => {
    const created = await call(app, 'POST', '/v1/subscriptions', { url: hook, denials: { intervalSeconds: 60 } });
    expect(created.status).toBe(201);
    expect(created.json.organization).toBeNull();
    // Each organization's cursor is made by the delivery workers, one organization at a time.
    expect(created.json.deliveries).toEqual([]);
    expect((await call(app, 'GET', `${base}/${created.json.id}`)).status).toBe(404);
    expect((await call(app, 'GET', '/v1/subscriptions')).json.items.map((item: { id: string }) => item.id)).toContain(created.json.id);
    expect((await call(app, 'DELETE', `/v1/subscriptions/${created.json.id}`)).status).toBe(204);
  });

  const refusals: [string, unknown, RegExp][] = [
    ['a private address, though loopback is allowed', { url: 'http://10.0.0.1/hook', journal: {} }, /10\.0\.0\.1.*private/],
    ['the cloud metadata address', { url: 'http://169.254.169.254/latest', journal: {} }, /metadata/],
    ['an IPv4-mapped private address', { url: 'http://[::ffff:192.168.1.1]/', journal: {} }, /private/],
    ['a scheme other than http(s)', { url: 'ftp://127.0.0.1/hook', journal: {} }, /http/],
    ['credentials in the URL', { url: 'http://user:pw@127.0.0.1/hook', journal: {} }, /user name or password/],
    ['a relative URL', { url: '/hook', journal: {} }, /URL/],
    ['nothing to send', { url: hook }, /at least one/],
    ['both fractions and quantities', { url: hook, thresholds: [{ kind: 'gpus', scope: 'organization', at: [0.5], quantities: [5] }] }, /exactly one/],
    ['a fraction of 0', { url: hook, thresholds: [{ kind: 'gpus', scope: 'organization', at: [0] }] }, /at/],
    ['a level twice', { url: hook, thresholds: [{ kind: 'gpus', scope: 'organization', at: [0.5, 0.5] }] }, /twice/],
    ['a project threshold without its project', { url: hook, thresholds: [{ kind: 'gpus', scope: 'project', at: [0.5] }] }, /project/],
    ['an unknown project', { url: hook, thresholds: [{ kind: 'gpus', scope: 'project', project: 'nope', at: [0.5] }] }, /nope/],
    ['an unknown kind', { url: hook, thresholds: [{ kind: 'tpus', scope: 'organization', at: [0.5] }] }, /tpus/],
    ['a digest more often than each minute', { url: hook, denials: { intervalSeconds: 10 } }, /intervalSeconds/],
    ['a digest interval of part minutes', { url: hook, denials: { intervalSeconds: 90 } }, /intervalSeconds/],
    ['an unknown journal action', { url: hook, journal: { actions: ['allocation.exploded'] } }, /actions/],
    ['an unknown property', { url: hook, journal: {}, secret: 'mine' }, /secret|additional/],
  ];

  it.each(refusals)('refuses %s with a clear 400 and makes nothing', async (_name, body, detail) => {
    const before = await test.ledger.listSubscriptions();
    const refused = await call(app, 'POST', base, body);
    expect(refused.status).toBe(400);
    expect(refused.json.type).toBe('/problems/invalid-request');
    expect(JSON.stringify(refused.json)).toMatch(detail);
    expect(await test.ledger.listSubscriptions()).toEqual(before);
  });

  it('refuses a loopback target unless the operator allowed it', async () => {
    const strict = await buildApp({ ledger: test.ledger, adminToken });
    try {
      const refused = await call(strict, 'POST', base, { url: hook, journal: {} });
      expect(refused.status).toBe(400);
      expect(refused.json.detail).toMatch(/127\.0\.0\.1 is a loopback address.*--webhook-allow/);
    } finally {
      await strict.close();
    }
  });

  it('answers 404 for an unknown organization or subscription', async () => {
    expect((await call(app, 'POST', '/v1/organizations/nope/subscriptions', { url: hook, journal: {} })).status).toBe(404);
    expect((await call(app, 'GET', '/v1/organizations/nope/subscriptions')).status).toBe(404);
    expect((await call(app, 'POST', `${base}/01900000-0000-7000-8000-000000000000/resume`)).status).toBe(404);
  });
});
