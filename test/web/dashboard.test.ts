// Goal: the dashboard `allot serve` serves at `/` works in a real browser against a real
// server: signing in with a token shows the organizations with a usage bar per kind (binary
// kinds in KiB/MiB/GiB…); an allocation created through the API moves the organization's
// bar and appears at the top of the journal feed without a reload; an org-admin's token lands
// on its own organization, lists no other and gets "not found" for another's page; a quota
// cut below usage asks for confirmation, changes nothing when cancelled and is forced only
// when confirmed; the projects' caps and guarantees, the allocations search and paging, the
// limits with a stale region, and the history chart show what the API holds; a bad token
// gets a clear error. Screenshots go to test/artifacts/dashboard/.
// Method: per engine (what the page does on its own, on the first engine only), a real
// `allot serve` child process on a fresh database, seeded through
// its HTTP API with the admin token; Debian's Chromium (/usr/bin/chromium) driven by
// playwright-core, one fresh browser context (so fresh storage) per test. Expectations read
// what the page shows (accessible names, text) and are compared with the API's own answers.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { spawnAllot } from '../support/cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { launchChromium, pagePerTest, screenshots } from '../support/browser.js';
import { call, startServer, testAdminToken, type ServerProcess } from '../support/server.js';

const artifacts = fileURLToPath(new URL('../artifacts/dashboard/', import.meta.url));

const Gi = 1024 ** 3;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  nodes: { target: string[] }[];
}

describe.each(engines)('dashboard in Chromium on %s', (engine) => {
  let database: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let orgAdminToken: string;
  let memberToken: string;
  let controller: ChildProcess;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await call(server.url, method, path, body);
    if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(response.json)}`);
    return response.json;
  };

  const signIn = async (token: string) => {
    await page.goto(`${server.url}/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    if (token !== 'not-a-token') await page.getByRole('button', { name: 'Sign out' }).waitFor();
  };

  const bar = (label: RegExp) => page.getByRole('img', { name: label });

  // What the page does on its own — routing, forms and dialogs, retries, signing out,
  // keyboard and accessibility — is the same over any server, and runs on one engine; the
  // views that show what the ledger holds run on both. (The API suites check that both
  // engines answer the same.)
  const itOnce: typeof it = engine === engines[0] ? it : (() => undefined) as unknown as typeof it;

  // Pictures of the views for people, taken on one engine (a full-page shot costs about half
  // a second of a busy machine); a failed test's shot is taken on either.
  const shot = screenshots(artifacts, engine, () => page);
  pagePerTest(() => browser, (made) => ({ context, page } = made), shot);

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    server = await startServer(database.url);
    browser = await launchChromium();

    await api('PUT', '/v1/resource-kinds/gpu', { displayName: 'GPUs', default: 0 });
    await api('PUT', '/v1/resource-kinds/ram', { displayName: 'RAM', format: 'binary', default: 0 });
    for (const organization of ['acme', 'beta']) await api('PUT', `/v1/organizations/${organization}`, { displayName: organization === 'acme' ? 'Acme Corp' : 'Beta' });
    await api('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 16 }, { kind: 'ram', quantity: '64Gi' }] });
    await api('PUT', '/v1/organizations/beta/quotas', { quotas: [{ kind: 'gpu', quantity: 8 }] });
    for (const project of ['web', 'batch']) await api('PUT', `/v1/organizations/acme/projects/${project}`, {});
    await api('PUT', '/v1/organizations/beta/projects/main', {});
    await api('PUT', '/v1/organizations/acme/projects/web/quotas', { quotas: [{ kind: 'gpu', cap: 10, guaranteed: 2 }] });
    await api('POST', '/v1/organizations/acme/projects/web/allocations', {
      resource: { kind: 'vm', id: 'vm-1' },
      allocations: [{ kind: 'gpu', committed: 4 }, { kind: 'ram', committed: 16 * Gi }],
    });
    await api('POST', '/v1/organizations/acme/projects/batch/allocations', {
      resource: { kind: 'vm', id: 'vm-2' },
      allocations: [{ kind: 'gpu', committed: 2, reserved: 1 }],
    });
    await api('POST', '/v1/organizations/beta/projects/main/allocations', {
      resource: { kind: 'vm', id: 'beta-secret-vm' },
      allocations: [{ kind: 'gpu', committed: 3 }],
    });
    // A limit in two regions; the host registered for eu-1 has never been reached.
    await api('PUT', '/v1/regions/eu-1', {});
    await api('PUT', '/v1/regions/us-1', {});
    await api('PUT', '/v1/organizations/acme/projects/web/limits/compute/instances', {
      regions: [{ region: 'eu-1', limit: 5 }, { region: 'us-1', limit: 3 }],
    });
    await api('PUT', '/v1/regions/eu-1/hosts/compute', { endpoint: 'http://127.0.0.1:9/', token: 'host-token' });
    orgAdminToken = (await api('POST', '/v1/tokens', { role: 'org-admin', organization: 'acme' })).token;
    memberToken = (await api('POST', '/v1/tokens', { role: 'project-member', organization: 'acme', project: 'web' })).token;
    // The controller of eu-1: it samples the usage history and fails to reach eu-1's host.
    controller = spawnAllot(['controller', '--region', 'eu-1', '--interval', '300', '--db', database.url], { stdio: 'ignore' });
  });

  afterAll(async () => {
    if (controller && controller.exitCode === null) {
      const exited = new Promise((resolve) => controller.once('exit', resolve));
      controller.kill('SIGTERM');
      await exited;
    }
    await browser?.close();
    await server?.stop();
    await database?.drop();
  });


  itOnce('serves the dashboard at / from the server itself, with a strict content policy', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await response.text();
    // Every script and stylesheet is this server's own.
    for (const [, source] of html.matchAll(/(?:src|href)="([^"]+)"/g)) expect(source).toMatch(/^\/assets\//);
  });

  itOnce('a wrong token is refused with a clear message and no data', async () => {
    await signIn('not-a-token');
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/token|credential|authenticat/i);
    expect(await page.getByRole('heading', { name: 'Organizations' }).count()).toBe(0);
  });

  itOnce('a page asked for as the signed-in view first renders is the page shown', async () => {
    // Seen under load: a link followed right after signing in left the organizations list on
    // screen. Here the hash changes as soon as the signed-in header is in the DOM (a mutation
    // observer runs before the page's effects do), every time.
    await page.goto(`${server.url}/`);
    await page.evaluate(() => {
      const observer = new MutationObserver(() => {
        if (!document.querySelector('header.top')) return;
        observer.disconnect();
        window.location.hash = '#/o/acme/limits';
      });
      observer.observe(document.body, { childList: true, subtree: true });
    });
    await page.getByLabel('API token').fill(testAdminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('table.limits').waitFor();
    expect(await page.getByRole('heading', { name: 'Organizations' }).count()).toBe(0);
  });

  it('signs in and shows each organization with a usage bar per kind, binary kinds in GiB', async () => {
    await signIn(testAdminToken);
    await page.getByRole('heading', { name: 'Organizations' }).waitFor();
    await bar(/^acme GPUs: 7 used of 16 \(committed 6, reserved 1, held 0\), 9 free$/).waitFor();
    await bar(/^acme RAM: 16 GiB used of 64 GiB/).waitFor();
    await bar(/^beta GPUs: 3 used of 8/).waitFor();
    expect(await page.getByRole('link', { name: 'Acme Corp' }).count()).toBe(1);
    await shot('organizations');

    // The filter runs on the server.
    await page.getByLabel('Filter by id prefix').fill('be');
    await expect.poll(() => page.getByRole('link', { name: 'Acme Corp' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Beta' }).count()).toBe(1);
  });

  it('an allocation made through the API moves the bar and tops the journal feed, without a reload', async () => {
    await signIn(testAdminToken);
    await page.getByRole('link', { name: 'Acme Corp' }).click();
    await page.getByRole('heading', { name: 'Quotas' }).waitFor();
    await bar(/^GPUs: 7 used of 16/).waitFor();
    await expect.poll(() => page.locator('.status').textContent()).toBe('live');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    const made = await api('POST', '/v1/organizations/acme/projects/batch/allocations', {
      resource: { kind: 'vm', id: 'vm-live' },
      allocations: [{ kind: 'gpu', committed: 5 }],
    });
    await bar(/^GPUs: 12 used of 16 \(committed 11, reserved 1, held 0\), 4 free$/).waitFor();
    const newest = page.getByRole('list', { name: /Journal entries/ }).getByRole('listitem').first();
    await expect.poll(() => newest.textContent()).toMatch(/allocation\.created in batch.*gpu committed \+5/);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    await shot('organization-live');
    await api('DELETE', `/v1/organizations/acme/projects/batch/allocations/${made.id}`);
    await bar(/^GPUs: 7 used of 16/).waitFor();
    await expect.poll(() => newest.textContent()).toMatch(/allocation\.deleted in batch/);
  });

  it("shows the projects' caps, guarantees and usage, and searches allocations by resource", async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await bar(/^web GPUs: 4 used of 10/).waitFor();
    const projects = page.locator('table.projects');
    await expect.poll(() => projects.textContent()).toContain('no cap');
    await page.getByLabel('Resource id').fill('vm-2');
    await page.getByRole('button', { name: 'Search' }).click();
    const allocations = page.locator('section.allocations tbody tr');
    await expect.poll(() => allocations.count()).toBe(1);
    expect(await allocations.first().textContent()).toMatch(/batch.*vm\/vm-2.*gpu: 2 committed, 1 reserved/);
    await page.getByLabel('Resource id').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => allocations.count()).toBe(2);
    expect(await page.locator('section.allocations').textContent()).toContain('ram: 16 GiB committed');
  });

  it("an org-admin sees its own organization only, and another's page is not found", async () => {
    await signIn(orgAdminToken);
    await page.getByRole('heading', { name: /Acme Corp/ }).waitFor();
    expect(page.url()).toMatch(/#\/o\/acme$/);
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    await page.goto(`${server.url}/#/o/beta`);
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/does not exist/);
    await page.goto(`${server.url}/#/o/beta/limits`);
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/does not exist/);
    expect(await page.content()).not.toContain('beta-secret-vm');
    // Caps and guarantees are theirs to divide; the quota itself is not.
    await page.goto(`${server.url}/#/o/acme`);
    await page.getByRole('button', { name: /Change the GPUs cap and guarantee of web/ }).waitFor();
    expect(await page.getByRole('button', { name: /Change the GPUs quota/ }).count()).toBe(0);
    await shot('org-admin');
  });

  it("a project-member sees its project's quotas and allocations, and nothing of its siblings", async () => {
    await signIn(memberToken);
    await page.getByRole('heading', { name: 'Project web' }).waitFor();
    await bar(/^web GPUs: 4 used of 10/).waitFor();
    const allocations = page.locator('section.allocations tbody tr');
    await expect.poll(() => allocations.count()).toBe(1);
    expect(await allocations.first().textContent()).toContain('vm/vm-1');
    expect(await page.getByLabel('Project', { exact: true }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: /Journal/ }).count()).toBe(0);
    const text = await page.locator('main').textContent();
    expect(text).not.toContain('vm-2');
    expect(text).not.toContain('batch');
    await shot('project-member');
    // Its limits, read from its project's own route.
    await page.goto(`${server.url}/#/o/acme/limits`);
    await expect.poll(() => page.locator('table.limits tbody tr').count()).toBe(2);
    expect(await page.getByRole('alert').count()).toBe(0);
  });

  itOnce('a quota cut below usage asks first: cancel changes nothing, confirm forces it', async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/beta`);
    await bar(/^GPUs: 3 used of 8/).waitFor();
    await page.getByRole('button', { name: 'Change the GPUs quota' }).click();
    await page.getByLabel('New GPUs quota').fill('2');
    await page.getByRole('button', { name: 'Save' }).click();
    const dialog = page.getByRole('dialog', { name: /Cut the GPUs quota below its usage/ });
    await dialog.waitFor();
    await shot('forced-cut');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect((await api('GET', '/v1/organizations/beta/quotas')).quotas.find((q: any) => q.kind === 'gpu').quantity).toBe(8);

    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Force the cut' }).click();
    await bar(/^GPUs: 3 used of 2 .*over the limit by 1$/).waitFor();
    expect((await api('GET', '/v1/organizations/beta/quotas')).quotas.find((q: any) => q.kind === 'gpu').quantity).toBe(2);
    // A raise needs no confirmation.
    await page.getByRole('button', { name: 'Change the GPUs quota' }).click();
    await page.getByLabel('New GPUs quota').fill('8');
    await page.getByRole('button', { name: 'Save' }).click();
    await bar(/^GPUs: 3 used of 8/).waitFor();
  });

  itOnce('a cap below usage asks first too; a malformed quantity is refused before it is sent', async () => {
    await signIn(orgAdminToken);
    await page.getByRole('button', { name: 'Change the GPUs cap and guarantee of web' }).click();
    await page.getByLabel('GPUs cap of web').fill('ten');
    expect(await page.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
    await page.getByLabel('GPUs cap of web').fill('3');
    await page.getByRole('button', { name: 'Save' }).click();
    const dialog = page.getByRole('dialog', { name: /Cap web below its usage/ });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    const web = await api('GET', '/v1/organizations/acme/projects/web/quotas');
    expect(web.quotas.find((q: any) => q.kind === 'gpu').cap).toBe(10);
  });

  it('lists limits per project, service and region, with an unreached host flagged stale', async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme/limits`);
    const rows = page.locator('table.limits tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.nth(1).textContent()).toMatch(/us-1.*no host registered/);
    // The controller's pass marks eu-1's host unreachable: that region's usage may be old.
    await expect
      .poll(async () => {
        await page.reload();
        await rows.first().waitFor();
        return rows.nth(0).textContent();
      }, { timeout: 30_000 })
      .toMatch(/web.*compute \/ instances.*eu-1.*stale/);
    await shot('limits');
  });

  itOnce("a quota changed by someone else while the editor is open is refused, not overwritten", async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await page.getByRole('button', { name: 'Change the GPUs quota' }).click();
    expect(await page.getByLabel('New GPUs quota').inputValue()).toBe('16');
    // Another admin raises it; the page reloads its numbers underneath the open editor.
    await api('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 32 }] });
    await bar(/^GPUs: 7 used of 32/).waitFor();
    await page.getByLabel('New GPUs quota').fill('20');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/changed since you opened this editor; nothing was saved\. The GPUs quota is now 32/);
    expect((await api('GET', '/v1/organizations/acme/quotas')).quotas.find((q: any) => q.kind === 'gpu').quantity).toBe(32);
    await page.getByRole('button', { name: 'Start again from the current quota' }).click();
    expect(await page.getByLabel('New GPUs quota').inputValue()).toBe('32');
    await page.getByLabel('New GPUs quota').fill('16');
    await page.getByRole('button', { name: 'Save' }).click();
    await bar(/^GPUs: 7 used of 16/).waitFor();
  });

  itOnce("a proxy's 404 on the stream is retried, and the numbers keep following the ledger", async () => {
    // The first watch gets an HTML 404 from "the proxy"; later ones go through.
    let refused = 0;
    await page.route('**/watch?*', async (route) => {
      if (refused === 0) {
        refused += 1;
        return route.fulfill({ status: 404, contentType: 'text/html', body: '<h1>default backend - 404</h1>' });
      }
      return route.continue();
    });
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await expect.poll(() => page.locator('.status').textContent(), { timeout: 15_000 }).toBe('live');
    expect(refused).toBe(1);
    const made = await api('POST', '/v1/organizations/acme/projects/batch/allocations', {
      resource: { kind: 'vm', id: 'vm-after-proxy' },
      allocations: [{ kind: 'gpu', committed: 1 }],
    });
    await bar(/^GPUs: 8 used of 16/).waitFor();
    await api('DELETE', `/v1/organizations/acme/projects/batch/allocations/${made.id}`);
    await bar(/^GPUs: 7 used of 16/).waitFor();
  });

  it('a change committed while the feed starts still moves the numbers', async () => {
    // The feed's first read waits until a change has committed: its entry comes in the tail,
    // not the stream, after the quotas were read.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/journal?tail=*', async (route) => {
      await held;
      await route.continue();
    });
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await bar(/^GPUs: 7 used of 16/).waitFor();
    const made = await api('POST', '/v1/organizations/acme/projects/batch/allocations', {
      resource: { kind: 'vm', id: 'vm-while-starting' },
      allocations: [{ kind: 'gpu', committed: 1 }],
    });
    release();
    await bar(/^GPUs: 8 used of 16/).waitFor();
    await api('DELETE', `/v1/organizations/acme/projects/batch/allocations/${made.id}`);
    await bar(/^GPUs: 7 used of 16/).waitFor();
  });

  itOnce('after a 412 the editor reads the quota afresh, even with the live feed silent', async () => {
    // A stream that delivers nothing: the page's own copy of the quotas goes stale.
    await page.route('**/watch?*', (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: '' }));
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await page.getByRole('button', { name: 'Change the GPUs quota' }).click();
    await api('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 32 }] });
    await page.getByLabel('New GPUs quota').fill('20');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/The GPUs quota is now 32, with 7 in use/);
    await page.getByRole('button', { name: 'Start again from the current quota' }).click();
    expect(await page.getByLabel('New GPUs quota').inputValue()).toBe('32');
    await page.getByLabel('New GPUs quota').fill('16');
    await page.getByRole('button', { name: 'Save' }).click();
    // The bar showed 16 all along (the feed is silent): the editor closing is the save's answer.
    await page.getByLabel('New GPUs quota').waitFor({ state: 'detached' });
    await bar(/^GPUs: 7 used of 16/).waitFor();
    expect((await api('GET', '/v1/organizations/acme/quotas')).quotas.find((q: any) => q.kind === 'gpu').quantity).toBe(16);
  });

  itOnce('a failed background reload keeps the table and the draft in an open editor', async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme`);
    await expect.poll(() => page.locator('.status').textContent()).toBe('live');
    await page.getByRole('button', { name: 'Change the GPUs quota' }).click();
    await page.getByLabel('New GPUs quota').fill('40');
    // The reload the next journal entry causes answers 503 once.
    let failed = 0;
    await page.route('**/v1/organizations/acme/quotas', (route) =>
      failed++ === 0
        ? route.fulfill({ status: 503, contentType: 'application/problem+json', body: JSON.stringify({ type: '/problems/service-unavailable', title: 'The service is unavailable', status: 503, detail: 'try again' }) })
        : route.continue(),
    );
    const made = await api('POST', '/v1/organizations/acme/projects/batch/allocations', {
      resource: { kind: 'vm', id: 'vm-during-503' },
      allocations: [{ kind: 'gpu', committed: 1 }],
    });
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('try again');
    expect(await page.getByLabel('New GPUs quota').inputValue()).toBe('40');
    expect(await page.locator('table.quotas').count()).toBe(1);
    await api('DELETE', `/v1/organizations/acme/projects/batch/allocations/${made.id}`);
    await bar(/^GPUs: 7 used of 16/).waitFor();
    expect(await page.getByLabel('New GPUs quota').inputValue()).toBe('40');
  });

  itOnce('a token revoked while the page is open ends the session, and nothing retries it', async () => {
    const { id, token } = await api('POST', '/v1/tokens', { role: 'reader', organization: 'acme' });
    // Reads in flight (the stream aside), and reads of the quotas answered.
    let inFlight = 0;
    let quotaReads = 0;
    const isRead = (request: { url(): string }) => !new URL(request.url()).pathname.endsWith('/watch');
    page.on('request', (request) => void (isRead(request) && (inFlight += 1)));
    page.on('requestfailed', (request) => void (isRead(request) && (inFlight -= 1)));
    page.on('requestfinished', (request) => {
      if (!isRead(request)) return;
      inFlight -= 1;
      if (new URL(request.url()).pathname.endsWith('/acme/quotas')) quotaReads += 1;
    });
    await signIn(token);
    await expect.poll(() => page.locator('.status').textContent()).toBe('live');
    // Once the feed has started the numbers are read again: let that settle first, so the
    // first read after the revocation is the search below.
    await expect.poll(() => quotaReads >= 2 && inFlight === 0).toBe(true);
    await api('DELETE', `/v1/tokens/${id}`);
    const sent: string[] = [];
    page.on('request', (request) => sent.push(new URL(request.url()).pathname));
    // The next read is refused: the page says so and signs out, and the stream is stopped.
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/session ended/);
    await page.getByLabel('API token').waitFor();
    const afterSignOut = sent.length;
    await page.waitForTimeout(2500);
    expect(sent.slice(afterSignOut)).toEqual([]);
  });

  itOnce('works from the keyboard alone and passes an axe-core audit on every view', async () => {
    await page.goto(`${server.url}/`);
    // Tab to the token field, type, and press Enter: no pointer anywhere.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token');
    await page.keyboard.type(testAdminToken);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Organizations' }).waitFor();
    // The skip link comes first and moves focus to the content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('content');
    // An organization opens from the keyboard, and its quota editor with it.
    await page.getByRole('link', { name: 'Acme Corp' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Change the GPUs quota' }).focus();
    await page.keyboard.press('Enter');
    // The editor takes the focus; Enter saves; the focus returns to the button.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('quota-gpu');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('20');
    await page.keyboard.press('Enter');
    await bar(/^GPUs: 7 used of 20/).waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Change the GPUs quota');
    await api('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpu', quantity: 16 }] });

    const audit = async (view: string, loaded: string[], prepare?: () => Promise<void>) => {
      await page.goto(`${server.url}/#${view}`);
      // Everything the view loads is on screen before the audit: its tables, chart, feed.
      for (const selector of loaded) await page.locator(selector).first().waitFor();
      await prepare?.();
      // Evaluated through the DevTools protocol, which the page's content policy does not cover.
      await page.evaluate(axeSource);
      const violations = await page.evaluate(async () => {
        const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: AxeViolation[] }> } }).axe;
        const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
        return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target })) }));
      });
      if (violations.length > 0) process.stderr.write(`axe on ${view}: ${JSON.stringify(violations, null, 1)}\n`);
      expect(violations, view).toEqual([]);
    };
    await audit('/', ['table.organizations tbody tr']);
    await audit('/o/acme', ['table.quotas tbody tr', 'table.projects tbody tr', 'section.allocations tbody tr', '.feed li']);
    await audit('/o/acme/history', ['.uplot']);
    await audit('/o/acme/limits', ['table.limits tbody tr']);
    // On a phone-sized screen the tables scroll sideways: still reachable by keyboard.
    await page.setViewportSize({ width: 420, height: 900 });
    await audit('/o/acme', ['table.quotas tbody tr', 'table.projects tbody tr', 'section.allocations tbody tr']);
    await page.setViewportSize({ width: 1400, height: 1000 });
    // With editors open, two at once, and a confirmation asking.
    await audit('/o/beta', ['table.quotas tbody tr', 'table.projects tbody tr'], async () => {
      await page.getByRole('button', { name: 'Change the GPUs cap and guarantee of main' }).click();
      await page.getByLabel('GPUs cap of main').fill('1');
      await page.getByRole('button', { name: 'Change the GPUs quota' }).click();
      await page.getByLabel('New GPUs quota').fill('1');
      await page.getByRole('button', { name: 'Save' }).first().click();
      await page.getByRole('dialog', { name: 'Cut the GPUs quota below its usage?' }).waitFor();
    });
    // Two editors' dialogs: each is named by its own title.
    await page.getByRole('dialog', { name: 'Cut the GPUs quota below its usage?' }).getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Save' }).nth(1).click();
    const cap = page.getByRole('dialog', { name: 'Cap main below its usage?' });
    await cap.waitFor();
    await cap.getByRole('button', { name: 'Cancel' }).click();
    expect((await api('GET', '/v1/organizations/beta/projects/main/quotas')).quotas.find((q: any) => q.kind === 'gpu').cap).toBeNull();
  });

  it('draws the history of a kind and narrows it to a range dragged on the chart', async () => {
    await signIn(testAdminToken);
    await page.goto(`${server.url}/#/o/acme/history`);
    // The controller samples on its first pass; until then the page says there is nothing yet.
    const chart = page.getByRole('img', { name: /Usage of gpu over the range; highest \d+/ });
    await expect
      .poll(async () => {
        await page.reload();
        await page.getByRole('heading', { name: 'Usage over time' }).waitFor();
        return chart.count();
      }, { timeout: 30_000 })
      .toBe(1);
    await page.getByRole('button', { name: 'Last 1 hour' }).click();
    await page.getByText(/one point per 60 s/).waitFor();
    const reads: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/history?')) reads.push(new URL(request.url()).searchParams.get('from')!);
    });
    const over = page.locator('.uplot .u-over');
    await over.waitFor();
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await expect.poll(() => page.getByText(/Selected on the chart\./).count()).toBe(1);
    // The last 48 minutes or so, read again from the server: the samples are still there.
    await expect.poll(() => reads.length).toBe(1);
    const hourAgo = Date.now() - 3_600_000;
    expect(Date.parse(reads[0]!)).toBeGreaterThan(hourAgo + 10 * 60_000);
    await chart.waitFor();
    await shot('history');
  });
});
