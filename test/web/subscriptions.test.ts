// Goal: the organization page's Webhooks section shows what the API holds and does what it
// says, in a real browser against a real server: a subscription whose receiver answers 500 is
// listed as failing with its last error ("HTTP 500"); Resume, once the receiver answers 204,
// brings it back to active with the delivery shown; the form adds a subscription and shows
// its signing secret once (a reload does not); a private address is refused with the
// server's reason; Delete asks first and removes it; the organization-scope thresholds are
// ticks on the kind's usage bar, named in the bar's accessible description; a reader (who may
// not manage webhooks: 403) sees no section, no ticks and no error.
// Method: per engine (what the page does on its own, on the first engine only), a real
// `allot serve` child process on a fresh database, allowed to deliver to loopback
// (--webhook-allow 127.0.0.0/8) and quick to give up (2 attempts, 50 ms backoff); a real HTTP
// receiver on 127.0.0.1 whose answer the test switches; seeded through the HTTP API with the
// admin token; Debian's Chromium driven by playwright-core, one fresh context per test.
// Expectations read what the page shows (accessible names, text) and compare with the API.
// Screenshots go to test/artifacts/subscriptions/.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pagePerTest, screenshots } from '../support/browser.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, testAdminToken, type ServerProcess } from '../support/server.js';

const artifacts = fileURLToPath(new URL('../artifacts/subscriptions/', import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

describe.each(engines)('webhooks on the dashboard in Chromium on %s', (engine) => {
  let database: TestDatabase;
  let server: ServerProcess;
  let receiver: Server;
  /** What the receiver answers every delivery. */
  let answer = 500;
  let hook: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let readerToken: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await call(server.url, method, path, body);
    if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(response.json)}`);
    return response.json;
  };
  const listedUrls = async () => (await api('GET', '/v1/organizations/acme/subscriptions')).items.map((s: any) => s.url).sort();

  const signIn = async (token: string) => {
    await page.goto(`${server.url}/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  };
  const openAcme = async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
  };
  const bar = (label: RegExp) => page.getByRole('img', { name: label });
  const row = (url: string) => page.locator('table.subscriptions tbody tr', { has: page.getByText(url, { exact: true }) });

  const itOnce: typeof it = engine === engines[0] ? it : (() => undefined) as unknown as typeof it;

  const shot = screenshots(artifacts, engine, () => page);
  pagePerTest(() => browser, (made) => ({ context, page } = made), shot);

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    receiver = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.statusCode = answer;
        response.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/failing`;
    const webhookArgs = ['--webhook-allow', '127.0.0.0/8', '--webhook-attempts', '2', '--webhook-backoff', '50'];
    server = await startServer(database.url, {}, webhookArgs);
    browser = await launchChromium();

    await api('PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: 0 });
    await api('PUT', '/v1/organizations/acme', { displayName: 'Acme Corp' });
    await api('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: 10 }] });
    await api('PUT', '/v1/organizations/acme/projects/web', {});
    // Absolute levels: 8 and 10 of the quota of 10 are ticks at 80 % and 100 % of the bar.
    await api('POST', '/v1/organizations/acme/subscriptions', {
      url: hook,
      journal: {},
      thresholds: [{ kind: 'gpus', scope: 'organization', quantities: [8, 10] }],
    });
    // Something to deliver, which the receiver refuses.
    await api('POST', '/v1/organizations/acme/projects/web/allocations', {
      resource: { kind: 'vm', id: 'vm-1' },
      allocations: [{ kind: 'gpus', committed: 3 }],
    });
    readerToken = (await api('POST', '/v1/tokens', { role: 'reader', organization: 'acme' })).token;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve(undefined)));
    await database?.drop();
  });


  it('lists a failing subscription with its last error; Resume sends again and it turns active', async () => {
    await openAcme();
    const failing = row(hook);
    await expect.poll(() => failing.textContent()).toMatch(/failing since .*Last error: HTTP 500/);
    const text = await failing.textContent();
    expect(text).toContain('Journal entries (all)');
    expect(text).toContain('gpus at 8, 10');
    expect(text).toContain('nothing yet');
    await shot('failing');

    answer = 204;
    await page.getByRole('button', { name: `Resume deliveries to ${hook}` }).click();
    const state = failing.locator('.badge');
    await expect.poll(() => state.textContent()).not.toMatch(/failing/);
    // Delivered: the page reads the outcome on its own (the worker writes no journal entry).
    await expect.poll(() => state.textContent()).toBe('active');
    await expect.poll(() => failing.textContent()).toContain('up to revision #');
    const [delivery] = (await api('GET', '/v1/organizations/acme/subscriptions')).items[0].deliveries;
    expect(delivery).toMatchObject({ state: 'active', lastError: null });
    expect(await failing.textContent()).toContain(`up to revision #${delivery.revision}, `);
    expect(await failing.textContent()).not.toContain('Last error');
    expect(await page.getByRole('button', { name: /^Resume deliveries/ }).count()).toBe(0);
  });

  it("draws the organization's thresholds as ticks on the kind's bar, named in its description", async () => {
    await openAcme();
    await bar(/^GPUs: 3 used of 10 \(committed 3, reserved 0, held 0\), 7 free; alerts at 8, 10$/).waitFor();
    expect(await page.locator('table.quotas .bar .tick').count()).toBe(2);
    expect(await page.getByRole('list', { name: 'Bar colours' }).textContent()).toContain('webhook alert level');
    await shot('ticks');
  });

  // The form and the dialog are the page's alone (the API tests hold creation on both engines).
  itOnce('the form adds a webhook and shows its secret once; Delete asks first and removes it', async () => {
    await openAcme();
    const second = hook.replace(/failing$/, 'second');
    await page.getByLabel('URL').fill(second);
    await page.getByRole('checkbox', { name: 'Journal entries' }).check();
    await page.getByLabel('Thresholds of').selectOption('gpus');
    expect(await page.getByLabel('At percent of the quota').inputValue()).toBe('80, 95, 100');
    await page.getByLabel('Denial digest every (minutes)').fill('5');
    await page.getByRole('button', { name: 'Add webhook' }).click();

    const secret = page.locator('code.secret');
    await secret.waitFor();
    const shown = (await secret.textContent())!;
    expect(shown).toMatch(/^whsec_\S+$/);
    expect(await page.getByRole('status').filter({ hasText: 'it will not be shown again' }).count()).toBe(1);
    const added = row(second);
    await expect.poll(() => added.textContent()).toMatch(/Journal entries \(all\)gpus at 80 %, 95 %, 100 %Denial digest every 5 min/);
    await shot('added');
    const listed = (await api('GET', '/v1/organizations/acme/subscriptions')).items.find((s: any) => s.url === second);
    expect(listed).toMatchObject({
      journal: {},
      thresholds: [{ kind: 'gpus', scope: 'organization', at: [0.8, 0.95, 1] }],
      denials: { intervalSeconds: 300 },
    });
    expect(listed.secret).toBeUndefined();
    // Both subscriptions' levels are on the bar, once each.
    await bar(/; alerts at 80 %, 95 %, 100 %$/).waitFor();

    await page.reload();
    await added.waitFor();
    expect(await secret.count()).toBe(0);
    expect(await page.content()).not.toContain(shown);

    // Cancelled, nothing is deleted; confirmed, it is gone from the page and the API.
    await page.getByRole('button', { name: `Delete the webhook to ${second}` }).click();
    const dialog = page.getByRole('dialog', { name: `Delete the webhook to ${second}?` });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await listedUrls()).toEqual([hook, second].sort());
    await page.getByRole('button', { name: `Delete the webhook to ${second}` }).click();
    await dialog.getByRole('button', { name: 'Delete it' }).click();
    await added.waitFor({ state: 'detached' });
    expect(await listedUrls()).toEqual([hook]);
    await bar(/; alerts at 8, 10$/).waitFor();
  });

  itOnce("a private address is refused with the server's reason, and malformed levels before sending", async () => {
    await openAcme();
    await row(hook).waitFor();
    await page.getByLabel('At percent of the quota').fill('80, 80');
    await expect.poll(() => page.locator('#webhook-levels-hint').textContent()).toBe('80 % is listed twice');
    expect(await page.getByRole('button', { name: 'Add webhook' }).isDisabled()).toBe(true);
    await page.getByLabel('At percent of the quota').fill('90');
    await page.getByLabel('URL').fill('http://10.0.0.1/hook');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/webhook target 10\.0\.0\.1 is a private address/);
    expect(await page.locator('code.secret').count()).toBe(0);
    expect(await listedUrls()).toEqual([hook]);
    await shot('refused');

    // Evaluated through the DevTools protocol, which the page's content policy does not cover.
    await page.evaluate(axeSource);
    const violations = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(context: Element, options: object): Promise<{ violations: { id: string }[] }> } }).axe;
      const result = await axe.run(document.querySelector('main')!, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
      return result.violations.map((violation) => JSON.stringify(violation).slice(0, 600));
    });
    expect(violations).toEqual([]);
  });

  itOnce('a reader, whose read of the webhooks is refused, sees no section, no ticks and no error', async () => {
    const read = page.waitForResponse((response) => new URL(response.url()).pathname === '/v1/organizations/acme/subscriptions');
    await signIn(readerToken);
    expect((await read).status()).toBe(403);
    await expect.poll(() => page.locator('.status').textContent()).toBe('live');
    // A change moves the bar: the page has handled every answer since, the refusal included.
    const made = await api('POST', '/v1/organizations/acme/projects/web/allocations', {
      resource: { kind: 'vm', id: 'vm-reader' },
      allocations: [{ kind: 'gpus', committed: 1 }],
    });
    await bar(/^GPUs: 4 used of 10 \(committed 4, reserved 0, held 0\), 6 free$/).waitFor();
    expect(await page.getByRole('heading', { name: 'Webhooks' }).count()).toBe(0);
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(await page.locator('.tick').count()).toBe(0);
    await api('DELETE', `/v1/organizations/acme/projects/web/allocations/${made.id}`);
  });
});
