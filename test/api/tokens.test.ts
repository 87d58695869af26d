// Goal: API tokens are a safe credential: only a service-admin makes, lists and revokes them;
// a new token works at once within its scope and stops at once when revoked; the clear token
// is shown exactly once (the 201, the CLI's last line) and is stored nowhere; bad scopes are
// refused; and guessing tokens from one address is cut off (429) without locking others out.
// Method: drive the app with `app.inject` on a ledger with a ManualClock, for every engine;
// read every row of every table back through the store to look for the clear tokens; run the
// real CLI (`node --import tsx src/cli/main.ts token …`) as a child process on the same
// database; vary `remoteAddress` per injected request for the failed-authentication limit.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allot } from '../support/cli.js';
import { buildApp } from '../../src/api/app.js';
import { authCacheTtlMs } from '../../src/domain/constants.js';
import type { Engine } from '../../src/store/store.js';
import { engines } from '../support/engines.js';
import { adminToken, expectProblem, send, type ApiResponse } from './harness.js';
import { openClockedApi, type ClockedApi } from './harness-extra.js';



/** One request with a given bearer token (or none) from a given address. */
async function as(
  app: FastifyInstance,
  token: string | undefined,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body?: unknown,
  remoteAddress = '127.0.0.1',
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await app.inject({
    method,
    url,
    headers,
    remoteAddress,
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  let json: any;
  try {
    json = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text: response.body, json };
}

async function setupTenants(api: ClockedApi) {
  const { ledger } = api.test;
  await ledger.putKind('cpu', { displayName: 'CPU' });
  await ledger.putOrganization('o1', {});
  await ledger.putOrganization('o2', {});
  await ledger.putProject('o1', 'p1', {});
  await ledger.setQuotas('o1', [{ kind: 'cpu', quantity: 100 }]);
  await ledger.setQuotas('o2', [{ kind: 'cpu', quantity: 100 }]);
}

/** Every table of the database, for the storage scan. */
async function allTables(api: ClockedApi): Promise<string[]> {
  const { store } = api.test.ledger;
  const rows = await store.transaction((tx) =>
    store.engine === 'sqlite'
      ? tx.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      : tx.all<{ name: string }>(
          'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()',
        ),
  );
  return rows.map((row) => row.name);
}

describe.each(engines)('API tokens on %s', (engine: Engine) => {
  let api: ClockedApi;
  let app: FastifyInstance;
  /** Every clear token made in this block, for the storage scan. */
  const clearTokens: string[] = [];

  beforeAll(async () => {
    api = await openClockedApi(engine);
    app = api.app;
    await setupTenants(api);
  });
  afterAll(async () => {
    await app?.close();
    await api?.test.close();
  });

  async function create(body: unknown, token = adminToken): Promise<ApiResponse> {
    const response = await as(app, token, 'POST', '/v1/tokens', body);
    if (response.status === 201) clearTokens.push(response.json.token);
    return response;
  }

  it('POST /v1/tokens answers 201 with the token once, and the token works at once in its scope', async () => {
    const response = await create({ role: 'org-admin', organization: 'o1' });
    expect(response.status, response.text).toBe(201);
    const made = response.json;
    expect(made).toMatchObject({
      role: 'org-admin',
      organization: 'o1',
      project: null,
      expiresAt: null,
      createdBy: 'admin',
      revokedAt: null,
    });
    expect(typeof made.id).toBe('string');
    expect(made.token).toMatch(/^allot_[A-Za-z0-9_-]{43}$/);
    expect(Number.isNaN(Date.parse(made.createdAt))).toBe(false);
    expect(Object.keys(made)).not.toContain('digest');

    expect((await as(app, made.token, 'GET', '/v1/organizations/o1/quotas')).status).toBe(200);
    // Another organization does not exist for it; administration is not its role.
    expectProblem(await as(app, made.token, 'GET', '/v1/organizations/o2/quotas'), 'not-found');
    expectProblem(await as(app, made.token, 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs' }), 'forbidden');
    // Its writes are recorded as its own.
    const allocation = await as(app, made.token, 'POST', '/v1/organizations/o1/projects/p1/allocations', {
      resource: { kind: 'vm', id: 'vm-1' },
      allocations: [{ kind: 'cpu', committed: 2 }],
    });
    expect(allocation.status, allocation.text).toBe(201);
    expect(allocation.json.createdBy).toBe(`token:${made.id}`);
  });

  it('a project-member, a reader and an expiring token are made with their scopes', async () => {
    const member = await create({ role: 'project-member', organization: 'o1', project: 'p1' });
    expect(member.status, member.text).toBe(201);
    expect(member.json).toMatchObject({ role: 'project-member', organization: 'o1', project: 'p1' });
    expect((await as(app, member.json.token, 'GET', '/v1/organizations/o1/projects/p1/allocations')).status).toBe(200);
    expectProblem(await as(app, member.json.token, 'GET', '/v1/organizations/o1/journal'), 'forbidden');

    const reader = await create({ role: 'reader', organization: 'o2' });
    expect(reader.status, reader.text).toBe(201);
    expect((await as(app, reader.json.token, 'GET', '/v1/organizations/o2/quotas')).status).toBe(200);
    expectProblem(
      await as(app, reader.json.token, 'POST', '/v1/organizations/o2/projects/x/allocations', {
        resource: { kind: 'vm', id: 'a' },
        allocations: [{ kind: 'cpu', committed: 1 }],
      }),
      'forbidden',
    );

    const expiresAt = new Date(api.clock.nowMs() + 60_000).toISOString();
    const expiring = await create({ role: 'reader', organization: 'o1', expiresAt });
    expect(expiring.status, expiring.text).toBe(201);
    expect(Date.parse(expiring.json.expiresAt)).toBe(Date.parse(expiresAt));
    expect((await as(app, expiring.json.token, 'GET', '/v1/organizations/o1/quotas')).status).toBe(200);
    api.clock.advance(60_000);
    expectProblem(await as(app, expiring.json.token, 'GET', '/v1/organizations/o1/quotas'), 'unauthorized');
  });

  it('GET /v1/tokens lists the tokens but never a token itself', async () => {
    const response = await as(app, adminToken, 'GET', '/v1/tokens');
    expect(response.status).toBe(200);
    expect(response.json.items.length).toBeGreaterThanOrEqual(4);
    for (const item of response.json.items) {
      expect(Object.keys(item).sort()).toEqual(
        ['createdAt', 'createdBy', 'expiresAt', 'id', 'organization', 'project', 'revokedAt', 'role'].sort(),
      );
    }
    expect(clearTokens.length).toBeGreaterThanOrEqual(4);
    for (const token of clearTokens) {
      expect(response.text).not.toContain(token);
      expect(response.text).not.toContain(token.slice('allot_'.length));
    }
  });

  it('DELETE /v1/tokens/{id} answers 204 and the token then gets 401; revoking again is harmless', async () => {
    const made = await create({ role: 'org-admin', organization: 'o1' });
    expect(made.status).toBe(201);
    expect((await as(app, made.json.token, 'GET', '/v1/organizations/o1')).status).toBe(200);
    const revoked = await as(app, adminToken, 'DELETE', `/v1/tokens/${made.json.id}`);
    expect(revoked.status, revoked.text).toBe(204);
    expect(revoked.text).toBe('');
    const refused = await as(app, made.json.token, 'GET', '/v1/organizations/o1');
    expectProblem(refused, 'unauthorized');
    expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
    const listed = (await as(app, adminToken, 'GET', '/v1/tokens')).json.items.find((t: any) => t.id === made.json.id);
    expect(listed.revokedAt).not.toBeNull();
    expect((await as(app, adminToken, 'DELETE', `/v1/tokens/${made.json.id}`)).status).toBe(204);
    expectProblem(await as(app, adminToken, 'DELETE', '/v1/tokens/no-such-token'), 'not-found');
  });

  it.each([
    ['a reader without an organization', { role: 'reader' }],
    ['an org-admin without an organization', { role: 'org-admin', organization: null }],
    ['a project-member without a project', { role: 'project-member', organization: 'o1' }],
    ['a project-member with a project but no organization', { role: 'project-member', project: 'p1' }],
    ['a reader with a project', { role: 'reader', organization: 'o1', project: 'p1' }],
    ['a service-admin with an organization', { role: 'service-admin', organization: 'o1' }],
    ['a service-admin with a project', { role: 'service-admin', project: 'p1' }],
    ['expiresAt in the past', { role: 'reader', organization: 'o1', expiresAt: '2020-01-01T00:00:00Z' }],
    ['expiresAt not a date', { role: 'reader', organization: 'o1', expiresAt: 'tomorrow' }],
    ['an unknown role', { role: 'root', organization: 'o1' }],
    ['no role', { organization: 'o1' }],
    ['an unknown property', { role: 'reader', organization: 'o1', token: 'allot_chosen-by-me' }],
    ['an organization that is not an id', { role: 'reader', organization: 'O1; DROP TABLE tokens' }],
  ])('refuses %s with 400', async (_name, body) => {
    const before = (await as(app, adminToken, 'GET', '/v1/tokens')).json.items.length;
    const response = await create(body);
    expectProblem(response, 'invalid-request');
    expect((await as(app, adminToken, 'GET', '/v1/tokens')).json.items.length).toBe(before);
  });

  it('refuses a token for an organization or project that does not exist with 404', async () => {
    expectProblem(await create({ role: 'reader', organization: 'nobody' }), 'not-found');
    expectProblem(await create({ role: 'project-member', organization: 'o1', project: 'nothing' }), 'not-found');
  });

  it('only a service-admin may use the tokens routes: other tokens get 403', async () => {
    const victim = await create({ role: 'reader', organization: 'o1' });
    for (const role of [
      { role: 'org-admin', organization: 'o1' },
      { role: 'service' },
      { role: 'reader', organization: 'o1' },
      { role: 'project-member', organization: 'o1', project: 'p1' },
    ]) {
      const made = await create(role);
      expect(made.status, made.text).toBe(201);
      const token = made.json.token;
      expectProblem(await as(app, token, 'GET', '/v1/tokens'), 'forbidden');
      expectProblem(await as(app, token, 'POST', '/v1/tokens', { role: 'service-admin' }), 'forbidden');
      expectProblem(await as(app, token, 'POST', '/v1/tokens', { role: 'org-admin', organization: 'o1' }), 'forbidden');
      expectProblem(await as(app, token, 'DELETE', `/v1/tokens/${victim.json.id}`), 'forbidden');
    }
    // The victim still works: nothing was revoked.
    expect((await as(app, victim.json.token, 'GET', '/v1/organizations/o1')).status).toBe(200);
    // A token made by a token is not possible, so every token was made by the admin.
    const items = (await as(app, adminToken, 'GET', '/v1/tokens')).json.items;
    expect(items.every((t: any) => t.createdBy === 'admin' || t.createdBy === 'system')).toBe(true);
  });

  it('an Idempotency-Key on POST /v1/tokens does not make the server keep the token', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'idempotency-key': 'tok-1' },
      payload: JSON.stringify({ role: 'reader', organization: 'o1' }),
    });
    expect(response.statusCode).toBe(201);
    clearTokens.push(JSON.parse(response.body).token);
  });

  it('the CLI prints a working token alone on the last line, and token revoke revokes it', async () => {
    const created = await allot('token', 'create', '--role', 'org-admin', '--org', 'o1', '--db', api.test.database.url);
    expect(created.code, created.stderr).toBe(0);
    const lines = created.stdout.trimEnd().split('\n');
    const token = lines[lines.length - 1]!;
    expect(token).toMatch(/^allot_[A-Za-z0-9_-]{43}$/);
    clearTokens.push(token);
    const id = /^token (\S+): org-admin of o1$/m.exec(created.stdout)?.[1];
    expect(id, created.stdout).toBeDefined();
    {
      const ok = await as(app, token, 'GET', '/v1/organizations/o1/quotas');
      expect(ok.status, ok.text).toBe(200);
      expectProblem(await as(app, token, 'GET', '/v1/organizations/o2/quotas'), 'not-found');
      const listed = (await as(app, adminToken, 'GET', '/v1/tokens')).json.items.find((t: any) => t.id === id);
      expect(listed).toMatchObject({ role: 'org-admin', organization: 'o1', createdBy: 'system', revokedAt: null });

      const revoked = await allot('token', 'revoke', id!, '--db', api.test.database.url);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(revoked.stdout).not.toContain(token);
      // Revoked by another process: this one trusts its lookup for at most authCacheTtlMs.
      api.clock.advance(authCacheTtlMs);
      expectProblem(await as(app, token, 'GET', '/v1/organizations/o1/quotas'), 'unauthorized');
    }
  });

  it('no table of the database holds any clear token', async () => {
    expect(clearTokens.length).toBeGreaterThanOrEqual(10);
    const tables = await allTables(api);
    expect(tables).toContain('tokens');
    expect(tables).toContain('idempotency_keys');
    expect(tables).toContain('journal');
    const { store } = api.test.ledger;
    let cells = 0;
    for (const table of tables) {
      const rows = await store.transaction((tx) => tx.all<Record<string, unknown>>(`SELECT * FROM ${table}`));
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          cells += 1;
          const text = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
          for (const token of clearTokens) {
            expect(text.includes(token), `${table}.${column} holds a clear token`).toBe(false);
            expect(text.includes(token.slice('allot_'.length)), `${table}.${column} holds a token's secret`).toBe(false);
          }
        }
      }
    }
    expect(cells).toBeGreaterThan(0);
    const tokenRows = await store.transaction((tx) => tx.all<{ digest: string }>('SELECT digest FROM tokens'));
    expect(tokenRows.length).toBe((await as(app, adminToken, 'GET', '/v1/tokens')).json.items.length);
    for (const row of tokenRows) expect(row.digest).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe.each(engines)('failed-authentication limit on %s', (engine: Engine) => {
  let api: ClockedApi;

  beforeAll(async () => {
    api = await openClockedApi(engine);
    await setupTenants(api);
  });
  afterAll(async () => {
    await api?.app.close();
    await api?.test.close();
  });

  it('30 wrong tokens from one address: guesses from it get 429; credentials that are no guess still work', async () => {
    const { app } = api;
    const attacker = '203.0.113.7';
    const bystander = '198.51.100.9';
    const reader = await as(app, adminToken, 'POST', '/v1/tokens', { role: 'reader', organization: 'o1' }, bystander);
    expect(reader.status).toBe(201);
    for (let i = 0; i < 30; i += 1) {
      const guess = i % 3 === 0 ? undefined : i % 3 === 1 ? `allot_guess${i}` : `${adminToken}x`;
      const response = await as(app, guess, 'GET', '/v1/organizations', undefined, attacker);
      expectProblem(response, 'unauthorized');
    }
    // Guesses — at the (short) admin token, malformed tokens, none at all — are cut off unchecked.
    for (const token of [`${adminToken}y`, 'allot_another-guess', undefined]) {
      const limited = await as(app, token, 'GET', '/v1/organizations', undefined, attacker);
      expectProblem(limited, 'too-many-requests');
      expect(limited.json.type).toBe('/problems/too-many-requests');
      expect(limited.headers['retry-after']).toBeDefined();
    }
    // A well-formed API token that is wrong is still checked, and refused with the same 429.
    const wrongToken = `allot_${'A'.repeat(43)}`;
    expectProblem(await as(app, wrongToken, 'GET', '/v1/organizations', undefined, attacker), 'too-many-requests');
    // A valid API token cannot be guessed: it is served from that address.
    const byToken = await as(app, reader.json.token, 'GET', '/v1/organizations/o1/quotas', undefined, attacker);
    expect(byToken.status, byToken.text).toBe(200);
    // The short admin token has worked here before (from the bystander): it is no guess either.
    const served = await as(app, adminToken, 'GET', '/v1/organizations', undefined, attacker);
    expect(served.status, served.text).toBe(200);
    expect(served.json.items.map((o: any) => o.id)).toEqual(['o1', 'o2']);
    const write = await as(app, adminToken, 'PUT', '/v1/organizations/o3', {}, attacker);
    expect(write.status).toBe(201);
    expect((await as(app, adminToken, 'GET', '/v1/organizations', undefined, bystander)).status).toBe(200);

    // The window is a minute: after it, the address is served again, guesses get 401.
    api.clock.advance(61_000);
    expectProblem(await as(app, 'wrong', 'GET', '/v1/organizations', undefined, attacker), 'unauthorized');
  });

  it('a short admin token that never worked here stays behind the limit; a long one does not', async () => {
    const address = '203.0.113.99';
    const longToken = 'L'.repeat(40);
    const fresh = await buildApp({ ledger: api.test.ledger, adminToken: 'short-secret' });
    const strong = await buildApp({ ledger: api.test.ledger, adminToken: longToken });
    try {
      for (const app of [fresh, strong]) {
        for (let i = 0; i < 30; i += 1) await as(app, `nope-${i}`, 'GET', '/v1/organizations', undefined, address);
      }
      expectProblem(await as(fresh, 'short-secret', 'GET', '/v1/organizations', undefined, address), 'too-many-requests');
      expect((await as(strong, longToken, 'GET', '/v1/organizations', undefined, address)).status).toBe(200);
    } finally {
      await fresh.close();
      await strong.close();
    }
  });

  it('behind a trusted proxy, failures count per forwarded client, and a client cannot forge it otherwise', async () => {
    const proxied = await buildApp({ ledger: api.test.ledger, adminToken, trustedProxies: ['10.0.0.0/8'] });
    const direct = await buildApp({ ledger: api.test.ledger, adminToken });
    const forwarded = (client: string) => ({ 'x-forwarded-for': client });
    const request = (app: FastifyInstance, token: string, client: string, remoteAddress: string) =>
      app.inject({
        method: 'GET',
        url: '/v1/organizations',
        remoteAddress,
        headers: { authorization: `Bearer ${token}`, ...forwarded(client) },
      });
    try {
      for (let i = 0; i < 30; i += 1) expect((await request(proxied, 'wrong', '192.0.2.1', '10.1.1.1')).statusCode).toBe(401);
      expect((await request(proxied, 'wrong', '192.0.2.1', '10.1.1.1')).statusCode).toBe(429);
      // Another client behind the same proxy is its own address.
      expect((await request(proxied, 'wrong', '192.0.2.2', '10.1.1.1')).statusCode).toBe(401);
      // Without trust, X-Forwarded-For is ignored: a client cannot escape its budget by forging it.
      for (let i = 0; i < 30; i += 1) await request(direct, 'wrong', `192.0.2.${i + 10}`, '198.51.100.50');
      expect((await request(direct, 'wrong', '192.0.2.200', '198.51.100.50')).statusCode).toBe(429);
      // Nor from an address outside the trusted range.
      for (let i = 0; i < 30; i += 1) await request(proxied, 'wrong', `192.0.2.${i + 10}`, '198.51.100.60');
      expect((await request(proxied, 'wrong', '192.0.2.201', '198.51.100.60')).statusCode).toBe(429);
    } finally {
      await proxied.close();
      await direct.close();
    }
  });

  it('29 failures do not limit an address, and successes in between do not reset the count', async () => {
    const { app } = api;
    const address = '192.0.2.44';
    for (let i = 0; i < 29; i += 1) {
      expectProblem(await as(app, 'wrong', 'GET', '/v1/organizations', undefined, address), 'unauthorized');
      if (i % 10 === 0) expect((await as(app, adminToken, 'GET', '/v1/organizations', undefined, address)).status).toBe(200);
    }
    expect((await as(app, adminToken, 'GET', '/v1/organizations', undefined, address)).status).toBe(200);
    expectProblem(await as(app, 'wrong', 'GET', '/v1/organizations', undefined, address), 'unauthorized');
    expectProblem(await as(app, 'wrong-again', 'GET', '/v1/organizations', undefined, address), 'too-many-requests');
  });
});
