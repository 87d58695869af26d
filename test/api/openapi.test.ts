// Goal: the OpenAPI document the server serves is the whole truth a client generator needs:
// Spectral's OpenAPI ruleset (recommended) finds no error and no warning in it; every operation
// has a unique, stable operationId and a declared tag; every authenticated operation declares
// the statuses any route can meet (401, 429, 500, 503), and those its kind can (403 for a role
// too weak, 404 with path parameters, 413/415 with a body, 409/422 with an Idempotency-Key, 412
// with If-Match); errors are application/problem+json; answers declare ETag, Location,
// Idempotent-Replayed and Retry-After where the server sends them. (That every answer the API
// tests meet matches the document is checked in every test, by test/api/harness.ts.)
// Method: build the app on an in-memory SQLite ledger and read `/openapi.json`.
import spectralCore from '@stoplight/spectral-core';
import spectralParsers from '@stoplight/spectral-parsers';
import { oas } from '@stoplight/spectral-rulesets';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { table } from '../../src/api/routes/table.js';
import { openLedger, type Ledger } from '../../src/ledger/ledger.js';

// Both are CommonJS: their default import is the module.
const { Spectral, Document } = spectralCore as unknown as typeof import('@stoplight/spectral-core');
const { Json } = spectralParsers as unknown as typeof import('@stoplight/spectral-parsers');

type Doc = {
  tags: { name: string }[];
  paths: Record<string, Record<string, { operationId: string; tags: string[]; requestBody?: { required?: boolean }; responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }> }>>;
};

describe('the OpenAPI document', () => {
  let ledger: Ledger;
  let app: FastifyInstance;
  let document: Doc;
  const operations = () => Object.values(document.paths).flatMap((methods) => Object.entries(methods));

  beforeAll(async () => {
    ledger = await openLedger({ db: 'sqlite::memory:' });
    app = await buildApp({ ledger, adminToken: 'a-long-enough-admin-token-for-the-test' });
    document = (await app.inject({ url: '/openapi.json' })).json();
  });
  afterAll(async () => {
    await app.close();
    await ledger.close();
  });

  it("passes Spectral's OpenAPI rules with no error and no warning", async () => {
    const spectral = new Spectral();
    spectral.setRuleset({ extends: [[oas as never, 'recommended']] } as never);
    const results = await spectral.run(new Document(JSON.stringify(document, null, 2), Json));
    expect(results.map((r) => `${r.code}: ${r.message} at ${r.path.join('.')}`)).toEqual([]);
  });

  it('names every operation of the route table once, with a declared tag', () => {
    const ids = operations().map(([, operation]) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(table.map((row) => row.operationId).sort());
    const declared = new Set(document.tags.map((tag) => tag.name));
    for (const [, operation] of operations()) for (const tag of operation.tags) expect(declared, tag).toContain(tag);
  });

  it('declares the statuses every route can meet, errors as problems, and the headers answers carry', () => {
    for (const row of table) {
      const path = row.path.replace(/:([a-zA-Z]+)/g, '{$1}');
      const operation = document.paths[path]![row.method.toLowerCase()]!;
      const statuses = Object.keys(operation.responses);
      const name = row.operationId;
      for (const status of ['401', '429', '500', '503']) expect(statuses, `${name} ${status}`).toContain(status);
      if (row.action !== 'read') expect(statuses, `${name} 403`).toContain('403');
      if (operation.requestBody) expect(statuses, `${name} 413/415`).toEqual(expect.arrayContaining(['413', '415']));
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400) expect(Object.keys(response.content ?? {}), `${name} ${status}`).toEqual(['application/problem+json']);
        if (status === '429' || status === '503') expect(Object.keys(response.headers ?? {}), `${name} ${status}`).toContain('Retry-After');
      }
    }
    const create = document.paths['/v1/organizations/{organization}/projects/{project}/allocations']!.post!;
    expect(Object.keys(create.responses['201']!.headers!).sort()).toEqual(['ETag', 'Idempotent-Replayed', 'Location']);
    const confirm = document.paths['/v1/organizations/{organization}/projects/{project}/holds/{id}/confirm']!.post!;
    expect(confirm.requestBody?.required).toBe(false);
  });

  it('answers 503 with Retry-After (a closing ledger refuses new decisions)', async () => {
    const headers = { authorization: 'Bearer a-long-enough-admin-token-for-the-test' };
    for (const url of ['/v1/organizations/acme', '/v1/organizations/acme/projects/web']) {
      expect((await app.inject({ method: 'PUT', url, headers, payload: {} })).statusCode).toBe(201);
    }
    await ledger.engine.close();
    const response = await app.inject({ method: 'DELETE', url: '/v1/organizations/acme/projects/web', headers });
    expect(response.statusCode, response.body).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
  });
});
