// Goal: the dashboard stays responsive at 1,000 organizations and 100,000 allocations: every
// view asks the server for one page (the organizations list, the allocations table), the page
// holds one page of rows, Next and Previous walk real pages, and the id-prefix filter and the
// resource search are answered by the server. How long each step took is written to
// test/artifacts/dashboard/<engine>-scale-timings.json (measured, never asserted).
// Method: per engine, 1,000 organizations (org-0 … org-999) and 100,000 live allocations in
// org-0 made in bulk by the benchmark's fixtures (recursive CTEs, counters kept in step, which
// `verifyCounters` confirms); then a real `allot serve` on that database and Debian's Chromium
// through playwright-core. The requests the page sends are counted from the browser's side.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAllocations, makeOrganizations } from '../../bench/fixtures.js';
import { openLedger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { launchChromium } from '../support/browser.js';
import { startServer, testAdminToken, type ServerProcess } from '../support/server.js';

const artifacts = fileURLToPath(new URL('../artifacts/dashboard/', import.meta.url));
const organizations = 1000;
const allocations = 100_000;

describe.each(engines)('dashboard at 1,000 organizations and 100,000 allocations on %s', (engine) => {
  let database: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  /** Every /v1 request the page sent, in order. */
  const requests: string[] = [];
  const timings: Record<string, number> = {};

  /** Runs `step`, then waits for `done`; records how long both took. */
  const timed = async (name: string, step: () => Promise<unknown>, done: () => Promise<unknown>) => {
    const started = performance.now();
    await step();
    await done();
    timings[name] = Math.round(performance.now() - started);
  };
  const rows = (selector: string) => page.locator(`${selector} tbody tr`);
  const firstOrganization = () => rows('table.organizations').first().locator('th').textContent();

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    const ledger = await openLedger({ db: database.url });
    try {
      await ledger.putKind('gpus', { displayName: 'GPUs' });
      const seeded = performance.now();
      await makeOrganizations(ledger, 'org-', organizations, 1_000_000);
      await makeAllocations(ledger, 'org-0', allocations);
      timings.seedMs = Math.round(performance.now() - seeded);
      expect(await ledger.verifyCounters()).toEqual([]);
    } finally {
      await ledger.close();
    }
    server = await startServer(database.url);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith('/v1/')) requests.push(`${url.pathname}${url.search}`);
    });
    await page.goto(`${server.url}/`);
    await page.getByLabel('API token').fill(testAdminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    // The list's request starts after the header paints: wait for its rows, or on a slow
    // machine it is counted as the first test's.
    await rows('table.organizations').first().waitFor();
  });

  afterAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    writeFileSync(`${artifacts}${engine}-scale-timings.json`, `${JSON.stringify({ engine, organizations, allocations, timingsMs: timings }, null, 2)}\n`);
    await browser?.close();
    await server?.stop();
    await database?.drop();
  });

  it('lists organizations a page at a time, filtered on the server', async () => {
    requests.length = 0;
    await timed('organizations first page (a reload)', () => page.reload(), () => rows('table.organizations').first().waitFor());
    await expect.poll(() => rows('table.organizations').count()).toBe(25);
    // One page of organizations with their quotas, and the kinds: not a request per organization.
    expect(requests.filter((url) => url.startsWith('/v1/organizations')), requests.join(' ')).toHaveLength(1);
    const first = await firstOrganization();

    await timed('organizations next page', () => page.getByRole('button', { name: 'Next' }).click(), () =>
      expect.poll(firstOrganization).not.toBe(first),
    );
    await expect.poll(() => rows('table.organizations').count()).toBe(25);
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(firstOrganization).toBe(first);

    await timed('organizations filtered', () => page.getByLabel('Filter by id prefix').fill('org-999'), () =>
      expect.poll(() => rows('table.organizations').count()).toBe(1),
    );
    expect(await firstOrganization()).toContain('org-999');
    expect(requests.every((url) => !url.startsWith('/v1/organizations') || url.includes('limit=25'))).toBe(true);
  });

  it("pages and searches an organization's 100,000 allocations on the server", async () => {
    requests.length = 0;
    const table = () => rows('section.allocations table');
    const firstResource = () => table().first().locator('code').textContent();
    await timed('organization with 100k allocations', () => page.goto(`${server.url}/#/o/org-0`), () => table().first().waitFor());
    await expect.poll(() => table().count()).toBe(25);
    await page.getByRole('img', { name: /^GPUs: 100,000 used of 1,000,000/ }).waitFor();
    const first = await firstResource();
    const next = page.getByRole('navigation', { name: 'Allocations pages' }).getByRole('button', { name: 'Next' });
    await timed('allocations next page', () => next.click(), () => expect.poll(firstResource).not.toBe(first));
    await expect.poll(() => table().count()).toBe(25);
    await timed('allocations search by resource', async () => {
      await page.getByLabel('Resource id').fill('pre-77777');
      await page.getByRole('button', { name: 'Search' }).click();
    }, () => expect.poll(() => table().count()).toBe(1));
    expect(await firstResource()).toBe('vm/pre-77777');
    // The whole page holds a few pages of rows, never the organization's allocations.
    expect(await page.locator('tr').count()).toBeLessThan(100);
    expect(requests.filter((url) => url.includes('/allocations')).every((url) => url.includes('limit=25'))).toBe(true);
  });
});
