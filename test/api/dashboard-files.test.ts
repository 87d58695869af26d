// Goal: the server serves the built dashboard at `/` itself: index.html revalidated on every
// load and under a content policy that allows only this server's scripts and connections;
// hashed assets cached for good; an unknown asset is a 404 problem; the files are not in the
// OpenAPI document; and a server whose dashboard was never built answers `/` with a 503
// problem that says how to build it, while its API works as before. Files are looked up per
// request, so a rebuild is served without a restart; only files under the dashboard's own
// assets/ are cached for good, wherever the dashboard lives; an index.html away for a moment
// (a rebuild) is a 503 too.
// Method: `buildApp` with the real dist/web (built by `npm test` before vitest runs), with a
// copy of it under a directory that is itself named `assets`, and with an empty directory,
// driven through `app.inject`.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, defaultDashboardDir } from '../../src/api/app.js';
import { openTestLedger, type TestLedger } from '../support/engines.js';
import { adminToken, auth } from './harness.js';

describe('dashboard files', () => {
  let test: TestLedger;
  let app: FastifyInstance;
  let unbuilt: FastifyInstance;
  let copied: FastifyInstance;
  const empty = mkdtempSync(join(tmpdir(), 'allot-no-dashboard-'));
  // A deployment whose path has a directory named "assets" in it.
  const parent = mkdtempSync(join(tmpdir(), 'allot-dashboard-copy-'));
  const copy = join(parent, 'assets', 'web');

  beforeAll(async () => {
    test = await openTestLedger('sqlite');
    app = await buildApp({ ledger: test.ledger, adminToken });
    unbuilt = await buildApp({ ledger: test.ledger, adminToken, dashboardDir: empty });
    cpSync(defaultDashboardDir, copy, { recursive: true });
    copied = await buildApp({ ledger: test.ledger, adminToken, dashboardDir: copy });
  });
  afterAll(async () => {
    await app.close();
    await unbuilt.close();
    await copied.close();
    await test.close();
    rmSync(empty, { recursive: true, force: true });
    rmSync(parent, { recursive: true, force: true });
  });

  it('serves index.html at / under a strict content policy, revalidated each load', async () => {
    const response = await app.inject({ url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['cache-control']).toBe('no-cache');
    const policy = String(response.headers['content-security-policy']);
    for (const directive of ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
      expect(policy).toContain(directive);
    }
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.body).toContain('<div id="app">');
  });

  it('serves the hashed assets with a long cache, and a 404 problem for any other', async () => {
    const html = (await app.inject({ url: '/' })).body;
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const asset of assets) {
      const response = await app.inject({ url: asset });
      expect(response.statusCode, asset).toBe(200);
      expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    // Nothing but the dashboard's own files: a missing one, a dotfile, a way out of the
    // directory, and the API's unknown paths are all a plain 404 problem.
    writeFileSync(join(copy, 'assets', '.secret'), 'not for the web\n');
    for (const url of ['/assets/missing.js', '/assets/.secret', '/assets/..%2f..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/x%00', '/v1/..%2fx', '/api/x%00', '/package.json']) {
      const response = await copied.inject({ url });
      expect(response.statusCode, url).toBe(404);
      expect(response.headers['content-type'], url).toMatch(/^application\/problem\+json/);
      expect(response.json().type, url).toBe('/problems/not-found');
    }
  });

  it('serves files of a rebuild made while it runs, and caches only its own assets for good', async () => {
    expect((await copied.inject({ url: '/assets/rebuilt-1234.js' })).statusCode).toBe(404);
    writeFileSync(join(copy, 'assets', 'rebuilt-1234.js'), 'export {};\n');
    const rebuilt = await copied.inject({ url: '/assets/rebuilt-1234.js' });
    expect(rebuilt.statusCode).toBe(200);
    expect(rebuilt.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    // index.html lies under a directory named assets, yet is not one of the dashboard's assets.
    expect((await copied.inject({ url: '/' })).headers['cache-control']).toBe('no-cache');
  });

  it('keeps the files out of the OpenAPI document', async () => {
    const document = (await app.inject({ url: '/openapi.json' })).json();
    expect(Object.keys(document.paths).filter((path) => !path.startsWith('/v1/') && !path.startsWith('/api/'))).toEqual([]);
  });

  it('says how to build a dashboard that is not built, and the API still answers', async () => {
    const response = await unbuilt.inject({ url: '/' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ status: 503, detail: expect.stringContaining('npm run build') });
    expect((await unbuilt.inject({ url: '/v1/whoami', headers: auth })).statusCode).toBe(200);
  });

  it('answers 503 while a rebuild has index.html away, and serves it again once it is back', async () => {
    const index = join(copy, 'index.html');
    const html = readFileSync(index);
    rmSync(index);
    const during = await copied.inject({ url: '/' });
    expect(during.statusCode).toBe(503);
    expect(during.json()).toMatchObject({ status: 503, detail: expect.stringContaining('npm run build') });
    writeFileSync(index, html);
    expect((await copied.inject({ url: '/' })).statusCode).toBe(200);
  });
});
