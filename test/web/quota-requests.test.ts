// Goal: the organization page's quota requests do what the API says, in a real browser against
// a real server: a project-member files a cap request for its project from the form and sees it
// pending; an org-admin finds it in the approval queue and approves less than was asked, and
// the member's page (which cannot follow the journal) then shows the new cap and the request
// approved for that amount without a reload; a second request for the same kind is refused
// with the open one named and reachable, and Cancel withdraws it; an approval the quota rules
// refuse (a guarantee the organization cannot meet) shows the server's problem and leaves the
// request in the queue, and a denial's reason is in the history; a service-admin's cut of the
// organization's quota past the safety check (50 %) asks first, changes nothing when cancelled
// and applies at once when confirmed. On its own, the page refuses to send a request without
// its required fields, works from the keyboard alone, and passes an axe-core audit.
// Method: per engine (what the page does on its own, on the first engine only), a real
// `allot serve` child process on a fresh database, seeded through the HTTP API with the admin
// token (kind gpus, organization acme with a quota of 20, projects web and batch, tokens for
// an org-admin and a project-member of web); Debian's Chromium driven by playwright-core, one
// fresh context per test and a second one where two people act at once. The tests run in
// order, each leaving no request open. Expectations read what the page shows (accessible
// names, text) and compare with the API. Screenshots go to test/artifacts/quota-requests/.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pagePerTest, screenshots } from '../support/browser.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, testAdminToken, type ServerProcess } from '../support/server.js';

const artifacts = fileURLToPath(new URL('../artifacts/quota-requests/', import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const requests = '/v1/organizations/acme/quota-requests';

describe.each(engines)('quota requests on the dashboard in Chromium on %s', (engine) => {
  let database: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const tokens = { orgAdmin: '', member: '' };
  /** The principals the journal and the requests record for those tokens. */
  const principals = { orgAdmin: '', member: '' };

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await call(server.url, method, path, body);
    if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(response.json)}`);
    return response.json;
  };
  /** As `api`, with another token. */
  const apiAs = async (token: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await response.json();
    if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  const pendingIds = async () => (await api('GET', `${requests}?state=pending`)).items.map((request: any) => request.id);
  const gpusOf = (quotas: any) => quotas.quotas.find((quota: any) => quota.kind === 'gpus');

  const openAcme = async (target: Page, token: string) => {
    await target.goto(`${server.url}/`);
    await target.getByLabel('API token').fill(token);
    await target.getByRole('button', { name: 'Sign in' }).click();
    await target.getByRole('button', { name: 'Sign out' }).waitFor();
    // A token of acme lands on it; the admin's goes there.
    if (token === testAdminToken) await target.goto(`${server.url}/#/o/acme`);
    await target.getByRole('heading', { name: 'Quota requests' }).waitFor();
    await target.getByRole('heading', { name: 'Request a change' }).waitFor();
  };
  /** Fills the form; `change` is an option of the "Change" list, as the role sees it. */
  const fileRequest = async (target: Page, change: string, preferred: string) => {
    await target.getByLabel('Change', { exact: true }).selectOption({ label: change });
    await target.getByLabel('Preferred value').fill(preferred);
    await target.getByLabel('Justification').fill('Nightly training runs need more');
    await target.getByLabel('Contact', { exact: true }).fill('ml-team@acme.example');
    await target.getByRole('button', { name: 'Request', exact: true }).click();
  };
  const pendingRow = (target: Page, subject: string) =>
    target.locator('table.requests-pending tbody tr', { has: target.getByRole('rowheader', { name: subject, exact: true }) });
  const recentRow = (target: Page, subject: string, outcome: RegExp) =>
    target.locator('table.requests-recent tbody tr', { has: target.getByRole('rowheader', { name: subject, exact: true }) }).filter({ hasText: outcome });
  /** A new context for another person: signed out, fresh storage. */
  const freshPage = async () => {
    await context.close();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    page = await context.newPage();
    return page;
  };
  const bar = (target: Page, label: RegExp) => target.getByRole('img', { name: label });
  const focusedId = (target: Page) => target.evaluate(() => document.activeElement?.id);

  const itOnce: typeof it = engine === engines[0] ? it : (() => undefined) as unknown as typeof it;

  const shot = screenshots(artifacts, engine, () => page);
  pagePerTest(() => browser, (made) => ({ context, page } = made), shot);

  const audit = async (target: Page, view: string) => {
    // Evaluated through the DevTools protocol, which the page's content policy does not cover.
    await target.evaluate(axeSource);
    const violations = await target.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: object[] }> } }).axe;
      const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
      return result.violations.map((violation) => JSON.stringify(violation).slice(0, 600));
    });
    expect(violations, view).toEqual([]);
  };

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    server = await startServer(database.url);
    browser = await launchChromium();
    await api('PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: 0 });
    await api('PUT', '/v1/organizations/acme', { displayName: 'Acme Corp' });
    await api('PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: 20 }] });
    for (const project of ['web', 'batch']) await api('PUT', `/v1/organizations/acme/projects/${project}`, {});
    const orgAdmin = await api('POST', '/v1/tokens', { role: 'org-admin', organization: 'acme' });
    const member = await api('POST', '/v1/tokens', { role: 'project-member', organization: 'acme', project: 'web' });
    Object.assign(tokens, { orgAdmin: orgAdmin.token, member: member.token });
    Object.assign(principals, { orgAdmin: `token:${orgAdmin.id}`, member: `token:${member.id}` });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await database?.drop();
  });


  it('a project-member files a cap request for its project from the form and sees it pending', async () => {
    await openAcme(page, tokens.member);
    // Its own project only: no project to choose, and no organization quota to ask for.
    expect(await page.getByLabel('For project').count()).toBe(0);
    const options = await page.getByLabel('Change', { exact: true }).locator('option').allTextContents();
    expect(options).toEqual(["web's cap", "web's guarantee"]);
    await expect.poll(() => page.locator('.requests p.muted').filter({ hasText: 'GPUs cap of web' }).textContent()).toBe('GPUs cap of web: now no cap.');

    await fileRequest(page, "web's cap", '12');
    const answer = page.getByRole('status').filter({ hasText: 'Requested the GPUs cap of web' });
    await expect.poll(() => answer.textContent()).toMatch(/^Requested the GPUs cap of web: no cap → 12\. It is pending until someone who may grant it decides\./);
    const row = pendingRow(page, 'GPUs cap of web');
    await expect.poll(() => row.textContent()).toMatch(/no cap → 12.*Nightly training runs need more.*ml-team@acme\.example/);
    expect(await row.textContent()).toContain(principals.member);

    const [listed, ...others] = (await api('GET', `${requests}?state=pending`)).items;
    expect(others).toEqual([]);
    expect(listed).toMatchObject({ scope: 'project', project: 'web', field: 'cap', kind: 'gpus', preferred: 12, current: null, requestedBy: principals.member });
    // The answer's link moves the focus to the request's row.
    await answer.getByRole('link', { name: 'Show it among the pending requests' }).click();
    await expect.poll(() => focusedId(page)).toBe(`request-${listed.id}`);
    await shot('member-filed');
  });

  it("an org-admin approves it for less than asked; the member's page shows the cap and the request approved for that amount", async () => {
    await openAcme(page, tokens.member);
    await pendingRow(page, 'GPUs cap of web').waitFor();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    // The org-admin, in a browser of its own, at the same time.
    const admin = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    try {
      await openAcme(admin, tokens.orgAdmin);
      const queued = pendingRow(admin, 'GPUs cap of web');
      await expect.poll(() => queued.textContent()).toMatch(/no cap → 12.*Nightly training runs need more.*ml-team@acme\.example/);
      await admin.getByRole('button', { name: 'Approve the request for the GPUs cap of web' }).click();
      await expect.poll(() => admin.locator('.requests tr.editor .hint').textContent()).toBe('Empty: the preferred 12.');
      await admin.getByLabel('Granted value').fill('8');
      await admin.getByRole('button', { name: 'Approve', exact: true }).click();
      await queued.waitFor({ state: 'detached' });
      await recentRow(admin, 'GPUs cap of web', new RegExp(`approved for 8 \\(asked 12\\) by ${principals.orgAdmin}`)).waitFor();
      await bar(admin, /^web GPUs: 0 used of 8/).waitFor();
      await shot('org-admin-approved', false, admin);
    } finally {
      await admin.context().close();
    }

    // The member's page heard it from the server (a long poll): no reload, no journal.
    await bar(page, /^web GPUs: 0 used of 8/).waitFor();
    await recentRow(page, 'GPUs cap of web', new RegExp(`^GPUs cap of webno cap → 12approved for 8 \\(asked 12\\) by ${principals.orgAdmin}, `)).waitFor();
    await expect.poll(() => page.getByText('No request is waiting for a decision.').count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(gpusOf(await api('GET', '/v1/organizations/acme/projects/web/quotas')).cap).toBe(8);
    const [approved] = (await api('GET', requests)).items;
    expect(approved).toMatchObject({ state: 'approved', granted: 8, preferred: 12, decidedBy: principals.orgAdmin });
    await shot('member-approved');
  });

  // The page's handling of a refusal and of the force confirmation does not depend on the engine
  // (the API tests hold the refusals on both): on the first engine only.
  itOnce('a second request for the same kind is refused, naming the open one; Cancel withdraws it', async () => {
    await openAcme(page, tokens.member);
    await fileRequest(page, "web's guarantee", '4');
    await pendingRow(page, 'GPUs guarantee of web').waitFor();
    const [open] = await pendingIds();

    // One open request per kind and project: a cap request now is refused, naming the guarantee's.
    await fileRequest(page, "web's cap", '10');
    const refusal = page.getByRole('alert');
    await expect.poll(() => refusal.textContent()).toContain(`quota request "${open}" for gpus here is still pending`);
    await refusal.getByRole('link', { name: 'Show the open request' }).click();
    await expect.poll(() => focusedId(page)).toBe(`request-${open}`);
    expect(await pendingIds()).toEqual([open]);
    await shot('open-refused');

    await page.getByRole('button', { name: 'Cancel the request for the GPUs guarantee of web' }).click();
    await pendingRow(page, 'GPUs guarantee of web').waitFor({ state: 'detached' });
    await recentRow(page, 'GPUs guarantee of web', new RegExp(`cancelled by ${principals.member}, `)).waitFor();
    expect(await pendingIds()).toEqual([]);
    expect((await api('GET', `${requests}/${open}`)).state).toBe('cancelled');
  });

  it('an approval the quota rules refuse shows the problem and stays in the queue; a denial with its reason goes to the history', async () => {
    // batch uses 18 of the 20: a guarantee of 4 for web cannot be kept.
    const batch = await api('POST', '/v1/organizations/acme/projects/batch/allocations', {
      resource: { kind: 'vm', id: 'batch-big' },
      allocations: [{ kind: 'gpus', committed: 18 }],
    });
    const asked = await apiAs(tokens.member, 'POST', requests, {
      kind: 'gpus',
      scope: 'project',
      project: 'web',
      field: 'guaranteed',
      preferred: 4,
      justification: 'A floor for the serving fleet',
      contact: 'web-oncall@acme.example',
    });
    try {
      await openAcme(page, tokens.orgAdmin);
      const row = pendingRow(page, 'GPUs guarantee of web');
      await expect.poll(() => row.textContent()).toMatch(/0 → 4.*A floor for the serving fleet/);
      await page.getByRole('button', { name: 'Approve the request for the GPUs guarantee of web' }).click();
      await page.getByRole('button', { name: 'Approve', exact: true }).click();
      const problem = page.locator('.requests tr.editor').getByRole('alert');
      await expect.poll(() => problem.textContent()).toMatch(/guarantees cannot be met \(gpus: 18 used \+ 4 kept back for guarantees > 20\)/);
      await shot('approval-refused');
      expect(await row.count()).toBe(1);
      expect((await api('GET', `${requests}/${asked.id}`)).state).toBe('pending');

      await page.getByRole('button', { name: 'Cancel', exact: true }).click();
      await page.getByRole('button', { name: 'Deny the request for the GPUs guarantee of web' }).click();
      await page.getByLabel('Reason for the denial').fill('No room while batch runs its backlog');
      await page.getByRole('button', { name: 'Deny', exact: true }).click();
      await row.waitFor({ state: 'detached' });
      const denied = new RegExp(`^GPUs guarantee of web0 → 4denied by ${principals.orgAdmin}, .*, because: No room while batch runs its backlog`);
      await recentRow(page, 'GPUs guarantee of web', denied).waitFor();
      expect(await api('GET', `${requests}/${asked.id}`)).toMatchObject({ state: 'denied', reason: 'No room while batch runs its backlog' });
      expect(gpusOf(await api('GET', '/v1/organizations/acme/projects/web/quotas')).guaranteed).toBe(0);
    } finally {
      await api('DELETE', `/v1/organizations/acme/projects/batch/allocations/${batch.id}`);
      // Failed half-way, it leaves no request open for the next test to stumble on.
      if ((await pendingIds()).includes(asked.id)) await api('POST', `${requests}/${asked.id}/cancel`);
    }
  });

  itOnce("a service-admin's cut of the organization's quota past the safety check asks first, and applies at once when confirmed", async () => {
    await openAcme(page, testAdminToken);
    await bar(page, /^GPUs: 0 used of 20/).waitFor();
    const filed = (await api('GET', requests)).items.length;
    await fileRequest(page, "the organization's quota", '8');
    const dialog = page.getByRole('dialog', { name: 'Cut the GPUs quota of the organization this deep?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('cutting gpus from 20 to 8 is more than the 50 % allowed without force');
    await shot('force-asked');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(gpusOf(await api('GET', '/v1/organizations/acme/quotas')).quantity).toBe(20);
    expect((await api('GET', requests)).items.length).toBe(filed);

    await page.getByRole('button', { name: 'Request', exact: true }).click();
    await dialog.getByRole('button', { name: 'Request it with force' }).click();
    await expect
      .poll(() => page.getByRole('status').filter({ hasText: 'Approved' }).textContent())
      .toBe('Approved at once: the GPUs quota of the organization is now 8.');
    await bar(page, /^GPUs: 0 used of 8/).waitFor();
    await recentRow(page, 'GPUs quota of the organization', /^GPUs quota of the organization20 → 8approved at once for 8 by admin, /).waitFor();
    expect(gpusOf(await api('GET', '/v1/organizations/acme/quotas')).quantity).toBe(8);
    expect(await pendingIds()).toEqual([]);
  });

  itOnce('nothing is sent without the preferred value, a justification and a contact; a malformed value is refused first', async () => {
    await openAcme(page, tokens.orgAdmin);
    const posted: string[] = [];
    page.on('request', (request) => request.method() === 'POST' && posted.push(new URL(request.url()).pathname));
    const request = page.getByRole('button', { name: 'Request', exact: true });
    const invalid = (label: string) => page.getByLabel(label, { exact: true }).evaluate((field) => (field as HTMLInputElement).validity.valid === false);

    await request.click();
    expect(await invalid('Preferred value')).toBe(true);
    await page.getByLabel('Preferred value').fill('1,5');
    await expect.poll(() => page.locator('#request-preferred-hint').textContent()).toMatch(/comma may only group thousands/);
    expect(await request.isDisabled()).toBe(true);
    await page.getByLabel('Preferred value').fill('30');
    expect(await invalid('Justification')).toBe(true);
    // Blank is not a justification.
    await page.getByLabel('Justification').fill('   ');
    await expect.poll(() => invalid('Justification')).toBe(true);
    await page.getByLabel('Justification').fill('Growth');
    await request.click();
    expect(await invalid('Contact')).toBe(true);
    expect(posted).toEqual([]);
    expect(await api('GET', `${requests}?state=pending`)).toMatchObject({ items: [] });
  });

  itOnce('files and approves a request from the keyboard alone', async () => {
    await openAcme(page, tokens.orgAdmin);
    await page.getByLabel('Kind', { exact: true }).focus();
    await page.keyboard.press('Tab');
    expect(await focusedId(page)).toBe('request-target');
    // From the organization's quota to a project's cap, then its guarantee.
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await page.getByLabel('Change', { exact: true }).inputValue()).toBe('guaranteed');
    await page.keyboard.press('Tab');
    expect(await focusedId(page)).toBe('request-project');
    await expect.poll(() => page.getByLabel('For project').inputValue()).toBe('batch');
    await page.keyboard.press('Tab');
    await page.keyboard.type('2');
    await page.keyboard.press('Tab');
    await page.keyboard.type('Keep two for the nightly jobs');
    await page.keyboard.press('Tab');
    expect(await focusedId(page)).toBe('request-contact');
    await page.keyboard.type('batch@acme.example');
    await page.keyboard.press('Enter');
    await pendingRow(page, 'GPUs guarantee of batch').waitFor();

    // The editor takes the focus; Enter approves the preferred value; the focus returns to the section.
    await page.getByRole('button', { name: 'Approve the request for the GPUs guarantee of batch' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => focusedId(page)).toMatch(/^approve-/);
    await page.keyboard.press('Enter');
    await recentRow(page, 'GPUs guarantee of batch', /approved for 2 by/).waitFor();
    await expect.poll(() => focusedId(page)).toBe('requests-heading');
    expect(gpusOf(await api('GET', '/v1/organizations/acme/projects/batch/quotas')).guaranteed).toBe(2);
  });

  itOnce('passes an axe-core audit with requests pending and decided, an editor, a refusal and a confirmation open', async () => {
    const open = await apiAs(tokens.member, 'POST', requests, {
      kind: 'gpus',
      scope: 'project',
      project: 'web',
      field: 'cap',
      preferred: 10,
      justification: 'Room for the launch',
      contact: 'web-oncall@acme.example',
    });
    try {
      await openAcme(page, tokens.orgAdmin);
      await pendingRow(page, 'GPUs cap of web').waitFor();
      await page.locator('table.requests-recent tbody tr').first().waitFor();
      await page.getByRole('button', { name: 'Approve the request for the GPUs cap of web' }).click();
      await page.getByLabel('Granted value').waitFor();
      await audit(page, 'org-admin with an approval editor');

      // The member: the refusal naming the open request.
      await openAcme(await freshPage(), tokens.member);
      await fileRequest(page, "web's guarantee", '1');
      await expect.poll(() => page.getByRole('alert').textContent()).toContain(open.id);
      await audit(page, 'project-member with a refusal');

      // A service-admin's deep cut, asking to confirm.
      await openAcme(await freshPage(), testAdminToken);
      await fileRequest(page, "the organization's quota", '1');
      await page.getByRole('dialog', { name: /this deep\?$/ }).waitFor();
      await audit(page, 'service-admin with the confirmation');
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    } finally {
      await api('POST', `${requests}/${open.id}/cancel`);
    }
  });
});
