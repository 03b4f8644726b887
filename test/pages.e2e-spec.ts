import type { Browser } from 'playwright-core';
import { mailTo, PASSWORD, signUp, SUBJECTS } from './support/accounts.js';
import { type BrowserSuite, describeInBrowser, SCREENSHOTS, startBrowserSuite } from './support/browser.js';
import { uniqueEmail } from './support/factories.js';
import { linkFrom, type SmtpCapture } from './support/smtp-capture.js';
import type { TestApp } from './support/test-app.js';

/** The landing pages behind mailed links, driven in headless Chromium as a person would. */
describeInBrowser('landing pages in a real browser', () => {
  let suite: BrowserSuite;
  let t: TestApp;
  let capture: SmtpCapture;
  let browser: Browser;

  beforeAll(async () => {
    suite = await startBrowserSuite();
    ({ t, capture, browser } = suite);
  });

  afterAll(async () => {
    await suite?.close();
  });

  /** The mailed link, pointed at this test's server instead of APP_PUBLIC_URL. */
  const local = (link: string) => link.replace('http://gatehouse.test', t.url);

  it('confirms an email only when the button is pressed', async () => {
    const email = uniqueEmail('browser');
    await t.request('/api/v1/auth/register', { method: 'POST', body: { email, password: PASSWORD } });
    const link = local(
      linkFrom(await mailTo(capture, email, SUBJECTS.verify), 'http://gatehouse.test/verify-email'),
    );

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(link);
    await expect(page.locator('h1').textContent()).resolves.toBe('Confirm your email');
    // Opening the page (what a mail scanner does) verified nothing.
    const [before] = await t.dataSource.query('SELECT is_verified FROM users WHERE email = ?', [email]);
    expect(Number(before.is_verified)).toBe(0);

    await page.getByRole('button', { name: 'Confirm my email' }).click();
    await page.locator('[role=status][data-outcome=success]').waitFor();
    await expect(page.locator('[role=status]').textContent()).resolves.toContain('confirmed');
    await page.screenshot({ path: `${SCREENSHOTS}/verify-email.png` });
    const [after] = await t.dataSource.query('SELECT is_verified FROM users WHERE email = ?', [email]);
    expect(Number(after.is_verified)).toBe(1);

    // The same link again: already used.
    await page.goto(link);
    await page.getByRole('button', { name: 'Confirm my email' }).click();
    await page.locator('[role=status][data-outcome=error]').waitFor();
    await expect(page.locator('[role=status]').textContent()).resolves.toContain('not valid');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('resets a password through the form, showing bad input and the outcome', async () => {
    const account = await signUp(t, capture);
    await t.request('/api/v1/auth/forgot-password', { method: 'POST', body: { email: account.email } });
    const link = local(
      linkFrom(await mailTo(capture, account.email, SUBJECTS.reset), 'http://gatehouse.test/reset-password'),
    );

    const page = await browser.newPage();
    await page.goto(link);
    await page.getByLabel('New password').fill('password');
    await page.getByLabel('Repeat it').fill('password');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.locator('[role=status][data-outcome=error]').waitFor();
    await expect(page.locator('[role=status]').textContent()).resolves.toContain('too common');

    await page.getByLabel('New password').fill('a fresh browser passphrase');
    await page.getByLabel('Repeat it').fill('a fresh browser passphrase');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.locator('[role=status][data-outcome=success]').waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/reset-password.png` });
    await page.close();

    const login = await t.request('/api/v1/auth/login', {
      method: 'POST',
      body: { email: account.email, password: 'a fresh browser passphrase' },
    });
    expect(login.status).toBe(200);
  });

  it('says so when a link has no token', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.url}/verify-email`);
    await expect(page.locator('[role=status]').textContent()).resolves.toContain('not valid');
    await page.close();
  });
});
