import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { SmtpCapture } from './smtp-capture.js';
import { TestApp } from './test-app.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = 'test-output/screenshots';

/**
 * Browser suites need Debian's chromium (.ci/run installs it). Without it they are skipped with a
 * printed reason on a developer machine, and fail under CI, where a skip would hide a broken page.
 */
export const describeInBrowser: typeof describe = (() => {
  if (existsSync(CHROMIUM) || process.env.CI) {
    return describe;
  }
  console.warn(
    `Browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH).`,
  );
  return describe.skip;
})();

export function launchBrowser(): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

/** What a browser suite runs against: the app with real SMTP capture, and one Chromium. */
export interface BrowserSuite {
  t: TestApp;
  capture: SmtpCapture;
  browser: Browser;
  close(): Promise<void>;
}

export async function startBrowserSuite(): Promise<BrowserSuite> {
  const capture = await SmtpCapture.start();
  const t = await TestApp.start({ MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms' });
  const browser = await launchBrowser();
  return {
    t,
    capture,
    browser,
    close: async () => {
      await browser.close();
      await t.close();
      await capture.stop();
    },
  };
}
