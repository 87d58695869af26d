// Goal: a text means one thing on both engines, and a number means what it says. Ids and free
// text that SQLite would store but PostgreSQL would refuse or change (a NUL, a lone surrogate)
// are refused at the boundary with a 400 naming the field; resource ids hold no controls,
// separators, format or bidi characters, no surrounding blanks, and are NFC, counted in code
// points; a body that is not UTF-8 is refused, not repaired; a number with a fraction or an
// exponent is refused wherever it appears (1e3, 2e0, 1.0, 1e-400), never rounded.
// Method: per engine, the same table of hostile requests on every route that takes an id or
// text (allocations, holds, listings, kinds, organizations, projects, regions, the
// compatibility API), each answered 400 naming the field, with a snapshot of everything the
// API shows unchanged; the same through the library; and accepted texts read back unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotError } from '../../src/index.js';
import { engines } from '../support/engines.js';
import { closeApi, expectFieldError, expectProblem, openApi, runCase, send, snapshot, type ApiHarness } from './harness.js';

const web = '/v1/organizations/acme/projects/web/allocations';
const holds = '/v1/organizations/acme/projects/web/holds';
const org = '11111111-1111-4111-8111-111111111111';
const project = '22222222-2222-4222-8222-222222222222';
const compat = `/api/v1/organizations/${org}/projects/${project}/allocations`;

/**
 * Percent-encodes a text as its UTF-8 bytes — and a lone surrogate as the three bytes it would
 * take if it were a character, which no UTF-8 decoder accepts (what a hostile client sends).
 */
function percentEncoded(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    const isLone =
      (unit >= 0xd800 && unit <= 0xdbff && !(text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff)) ||
      (unit >= 0xdc00 && unit <= 0xdfff && !(text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) <= 0xdbff));
    if (isLone) out += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 63), 0x80 | (unit & 63)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    else out += encodeURIComponent(text[i]!.length === 1 && unit >= 0xd800 && unit <= 0xdbff ? text.slice(i, (i += 1) + 1) : text[i]!);
  }
  return out;
}

/** Resource ids that must be refused, each with why. */
const hostileIds: [string, string][] = [
  ['a lone high surrogate', 'vm-\ud800'],
  ['a lone low surrogate', 'vm-\udc00'],
  ['a NUL', 'vm-\u0000'],
  ['a C0 control (tab)', 'vm\t1'],
  ['a C1 control U+0085 (next line)', 'vm\u00851'],
  ['DEL', 'vm\u007f'],
  ['a line separator U+2028', 'vm\u20281'],
  ['a paragraph separator U+2029', 'vm\u20291'],
  ['a right-to-left override U+202E', 'vm-\u202etxt.exe'],
  ['a left-to-right isolate U+2066', 'vm\u20661'],
  ['a byte order mark', '\ufeffvm-1'],
  ['a zero-width joiner', 'vm\u200d1'],
  ['a soft hyphen', 'vm\u00ad1'],
  ['a blank alone', ' '],
  ['a leading blank', ' vm-1'],
  ['a trailing blank', 'vm-1 '],
  ['a no-break space', 'vm\u00a01'],
  ['decomposed (NFD) text', 'cafe\u0301'],
  ['256 code points', '😀'.repeat(256)],
  ['nothing', ''],
];

/** Resource ids that are fine, and come back exactly as sent. */
const fineIds = ['vm-1', 'café', 'サーバー/01', 'a b', 'x'.repeat(255), '😀'.repeat(255), 'ﬁle', 'Ω', 'عربى-1'];

describe.each(engines)('one canonical text on %s', (engine) => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApi(engine);
    const { ledger } = api.test;
    await ledger.putKind('cpu', { displayName: 'CPU' });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.putOrganization(org, {});
    await ledger.putProject(org, project, {});
  });
  afterAll(async () => closeApi(api));

  const allocation = (id: unknown) => ({ resource: { kind: 'vm', id }, allocations: [{ kind: 'cpu', committed: 1 }] });
  const compatAllocation = (id: string, metadata: Record<string, unknown> = {}) => ({
    metadata: { name: 'vm', ...metadata },
    spec: { kind: 'vm', id, allocations: [{ kind: 'cpu', committed: 1, reserved: 0 }] },
  });

  it.each(hostileIds)('refuses a resource id with %s on every route that takes one, changing nothing', async (_why, id) => {
    const before = await snapshot(api.app);
    const existing = (await send(api.app, { method: 'POST', url: web, body: allocation(`keep-${engine}-${Math.random()}`) })).json;
    const after = await snapshot(api.app);
    for (const [method, url, body, field] of [
      ['POST', web, allocation(id), 'resource.id'],
      ['PUT', `${web}/${existing.id}`, allocation(id), 'resource.id'],
      ['POST', holds, { ...allocation(id), ttlSeconds: 60 }, 'resource.id'],
      ['GET', `${web}?resourceId=${percentEncoded(id)}`, undefined, 'resourceId'],
      ['GET', `/v1/organizations/acme/allocations?resourceKind=vm&resourceId=${percentEncoded(id)}`, undefined, 'resourceId'],
    ] as const) {
      const response = await send(api.app, { method, url, body });
      expect(response.status, `${method} ${url}: ${response.text}`).toBe(400);
      expectProblem(response, 'invalid-request');
      expectFieldError(response.json, field);
    }
    // The compatibility API names the field its own way, and answers in its own error schema.
    const viaCompat = await send(api.app, { method: 'POST', url: compat, body: compatAllocation(id) });
    expect(viaCompat.status, viaCompat.text).toBe(400);
    expect(viaCompat.json).toMatchObject({ error: 'invalid_request' });
    expect(await snapshot(api.app)).toEqual(after);
    expect(before).not.toEqual(after);
    // The library refuses the same ids the same way.
    await expect(Promise.resolve().then(() => api.test.ledger.createAllocation('acme', 'web', allocation(id) as never))).rejects.toMatchObject({
      code: 'invalid-request',
      extensions: { errors: [expect.objectContaining({ field: 'resource.id' })] },
    });
  });

  it.each(fineIds)('accepts the resource id %j and reads it back exactly', async (id) => {
    const created = await send(api.app, { method: 'POST', url: web, body: allocation(id) });
    expect(created.status, created.text).toBe(201);
    expect(created.json.resource.id).toBe(id);
    const found = await send(api.app, { method: 'GET', url: `${web}?resourceKind=vm&resourceId=${encodeURIComponent(id)}` });
    expect(found.json.items.map((item: any) => item.resource.id)).toEqual([id]);
    expect((await send(api.app, { method: 'DELETE', url: `${web}/${created.json.id}` })).status).toBe(204);
  });

  it.each([
    ['a NUL', 'a\u0000b', true],
    ['a lone surrogate', 'a\ud83db', true],
    // The compatibility API's published contract lets metadata hold any other character.
    ['a control character', 'a\u0007b', false],
  ])('refuses free text with %s in every text field, changing nothing', async (_why, text, refusedByCompat) => {
    const before = await snapshot(api.app);
    for (const [method, url, body, field] of [
      ['PUT', '/v1/resource-kinds/cpu', { displayName: text }, 'displayName'],
      ['PUT', '/v1/resource-kinds/cpu', { displayName: 'CPU', description: text }, 'description'],
      ['PUT', '/v1/organizations/acme', { displayName: text }, 'displayName'],
      ['PUT', '/v1/organizations/acme/projects/web', { displayName: text }, 'displayName'],
      ['PUT', '/v1/regions/eu-1', { displayName: text }, 'displayName'],
    ] as const) {
      const response = await send(api.app, { method, url, body });
      expect(response.status, `${method} ${url}: ${response.text}`).toBe(400);
      expectFieldError(response.json, field);
    }
    // The compatibility API's metadata: once a 500 on PostgreSQL and a 201 on SQLite.
    for (const metadata of refusedByCompat ? [{ description: text }, { tags: [{ name: 'env', value: text }] }, { tags: [{ name: text, value: 'x' }] }] : []) {
      const response = await send(api.app, { method: 'POST', url: compat, body: compatAllocation(`c-${Math.random()}`, metadata) });
      expect(response.status, response.text).toBe(400);
      expect(response.json).toMatchObject({ error: 'invalid_request' });
    }
    expect(await snapshot(api.app)).toEqual(before);
    await expect(Promise.resolve().then(() => api.test.ledger.putOrganization('acme', { displayName: text }))).rejects.toBeInstanceOf(AllotError);
  });

  it('keeps free text that both engines store alike (bidi, separators, emoji) exactly', async () => {
    const text = 'Acme \u202eCorp\u202c — ☃ 😀';
    const response = await send(api.app, { method: 'PUT', url: '/v1/organizations/acme', body: { displayName: text } });
    expect(response.status, response.text).toBe(200);
    expect((await send(api.app, { method: 'GET', url: '/v1/organizations/acme' })).json.displayName).toBe(text);
    const description = 'line one\u2028line two \u200d';
    const viaCompat = await send(api.app, { method: 'POST', url: compat, body: compatAllocation('c-text', { description }) });
    expect(viaCompat.status, viaCompat.text).toBe(201);
    expect(viaCompat.json.metadata.description).toBe(description);
  });

  it('refuses a body that is not UTF-8 instead of repairing it', async () => {
    const before = await snapshot(api.app);
    const bytes = Buffer.concat([
      Buffer.from('{"resource":{"kind":"vm","id":"vm-'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"},"allocations":[{"kind":"cpu","committed":1}]}'),
    ]);
    const response = await api.app.inject({
      method: 'POST',
      url: web,
      headers: { authorization: 'Bearer test-token', 'content-type': 'application/json' },
      payload: bytes,
    });
    expect(response.statusCode).toBe(400);
    expectFieldError(response.json(), 'body');
    expect(response.json().errors[0].message).toMatch(/UTF-8/);
    expect(await snapshot(api.app)).toEqual(before);
  });

  it('refuses a lone surrogate in a property name as well', async () => {
    const response = await send(api.app, {
      method: 'POST',
      url: web,
      rawBody: '{"resource":{"kind":"vm","id":"ok","\\ud800":1},"allocations":[{"kind":"cpu","committed":1}]}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(400);
    expectFieldError(response.json, 'resource');
  });

  it.each([
    ['1e3', 'allocations[0].committed'],
    ['2e0', 'allocations[0].committed'],
    ['1.0', 'allocations[0].committed'],
    ['1e-400', 'allocations[0].committed'],
    ['0.5', 'allocations[0].committed'],
    ['1E2', 'allocations[0].committed'],
  ])('refuses the number %s in a quantity, naming it, instead of rounding it', async (literal, field) => {
    const before = await snapshot(api.app);
    const response = await send(api.app, {
      method: 'POST',
      url: web,
      rawBody: `{"resource":{"kind":"vm","id":"n-1"},"allocations":[{"kind":"cpu","committed":${literal}}]}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status, response.text).toBe(400);
    expectFieldError(response.json, field);
    expect(await snapshot(api.app)).toEqual(before);
  });

  it('refuses a fraction or an exponent in any number: quotas, ttlSeconds, the compatibility API', async () => {
    const cases: [string, string, string, string][] = [
      ['PUT', '/v1/organizations/acme/quotas', '{"quotas":[{"kind":"cpu","quantity":1e2}]}', 'quotas[0].quantity'],
      ['POST', holds, '{"resource":{"kind":"vm","id":"h"},"allocations":[{"kind":"cpu"}],"ttlSeconds":6e1}', 'ttlSeconds'],
      ['PUT', '/v1/resource-kinds/cpu', '{"displayName":"CPU","default":10.0}', 'default'],
    ];
    for (const [method, url, rawBody, field] of cases) {
      const response = await send(api.app, { method: method as 'PUT', url, rawBody, headers: { 'content-type': 'application/json' } });
      expect(response.status, `${url}: ${response.text}`).toBe(400);
      expectFieldError(response.json, field);
    }
    const viaCompat = await send(api.app, {
      method: 'POST',
      url: compat,
      rawBody: JSON.stringify(compatAllocation('c-num')).replace('"committed":1', '"committed":1.0'),
      headers: { 'content-type': 'application/json' },
    });
    expect(viaCompat.status, viaCompat.text).toBe(400);
  });

  it('accepts digits, "-0" and quantity strings as documented', async () => {
    const response = await runCase(api.app, {
      name: 'digits',
      method: 'POST',
      url: web,
      body: { resource: { kind: 'vm', id: 'digits' }, allocations: [{ kind: 'cpu', committed: 2, reserved: '1k' }] },
      status: 201,
    });
    expect(response.json.allocations).toEqual([{ kind: 'cpu', committed: 2, reserved: 1000 }]);
    const negativeZero = await send(api.app, {
      method: 'POST',
      url: web,
      rawBody: '{"resource":{"kind":"vm","id":"neg-zero"},"allocations":[{"kind":"cpu","committed":-0,"reserved":1}]}',
      headers: { 'content-type': 'application/json' },
    });
    expect(negativeZero.status, negativeZero.text).toBe(201);
    expect(negativeZero.json.allocations).toEqual([{ kind: 'cpu', committed: 0, reserved: 1 }]);
  });
});
