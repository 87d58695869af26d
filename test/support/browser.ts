/**
 * Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it) driven by
 * playwright-core, which cannot download a browser here. `ALLOT_CHROMIUM` names another binary.
 */
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterEach, beforeEach } from 'vitest';

// The flags this machine's Chromium needs headless and offline: no sandbox as root, and no
// background connections to hosts it cannot reach.
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.ALLOT_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: chromiumArgs });
}

/**
 * Screenshots for a browser test file: `shot(name)` saves the page as `<engine>-<name>.png` in
 * `artifacts` — of the SQLite run only, unless `always` (a failure's is always kept).
 */
export function screenshots(artifacts: string, engine: string, current: () => Page) {
  return async (name: string, always = false, target = current()) => {
    if (engine !== 'sqlite' && !always) return;
    mkdirSync(artifacts, { recursive: true });
    await target.screenshot({ path: `${artifacts}${engine}-${name}.png`, fullPage: true });
  };
}

/**
 * A fresh context and page for each test of the enclosing describe block (given to `use`), closed
 * after it; a failed test leaves a screenshot of what the page showed, to see why.
 */
export function pagePerTest(
  browser: () => Browser,
  use: (made: { context: BrowserContext; page: Page }) => void,
  shot: (name: string, always: boolean) => Promise<void>,
): void {
  let context: BrowserContext | undefined;
  beforeEach(async () => {
    context = await browser().newContext({ viewport: { width: 1400, height: 1000 } });
    use({ context, page: await context.newPage() });
  });
  afterEach(async (test) => {
    if (test.task.result?.state === 'fail') await shot(`failed-${test.task.name.slice(0, 40).replace(/\W+/g, '-')}`, true).catch(() => undefined);
    await context?.close();
  });
}
