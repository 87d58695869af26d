/**
 * Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it) driven by
 * playwright-core, which cannot download a browser here. `ALLOT_CHROMIUM` names another binary.
 */
import { chromium, type Browser } from 'playwright-core';

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
