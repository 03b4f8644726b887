import type { Browser, Page } from 'playwright-core';
import { totpCode } from '../src/auth/mfa/totp.js';
import { Clock } from '../src/common/clock.js';
import { auditEvents, signUp } from './support/accounts.js';
import { type BrowserSuite, describeInBrowser, SCREENSHOTS, startBrowserSuite } from './support/browser.js';
import type { SmtpCapture } from './support/smtp-capture.js';
import type { TestApp } from './support/test-app.js';

/**
 * Issue 14 in the operators' console: in headless Chromium, an operator turns TOTP on for an account
 * through "Try it out" (setup, confirm with a code the test computes from the shown secret), signs in
 * with password then code, and reads the audit rows it left.
 */
describeInBrowser('two-step sign-in through the OpenAPI UI', () => {
  let suite: BrowserSuite;
  let t: TestApp;
  let capture: SmtpCapture;
  let browser: Browser;

  beforeAll(async () => {
    suite = await startBrowserSuite();
    ({ t, capture, browser } = suite);
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await suite?.close();
  });

  /** Opens /docs afresh (authorization persists), expands an operation, "Try it out", executes it. */
  async function tryItOut(
    page: Page,
    operationId: string,
    tag: string,
    body?: object,
  ): Promise<{ status: string; text: string }> {
    await page.goto(`${t.url}/docs`);
    await page.locator('.swagger-ui .info .title').waitFor();
    const block = page.locator(`#operations-${tag}-${operationId}`);
    await block.locator('.opblock-summary').first().click();
    await block.locator('button.try-out__btn').click();
    if (body) {
      await block.locator('textarea.body-param__text').fill(JSON.stringify(body));
    }
    await block.locator('button.execute').click();
    const row = block.locator('.live-responses-table .response').first();
    await row.waitFor();
    return {
      status: (await row.locator('.response-col_status').textContent())?.trim() ?? '',
      text: (await row.locator('.response-col_description pre').first().textContent()) ?? '',
    };
  }

  async function authorize(page: Page, accessToken: string): Promise<void> {
    await page.locator('.auth-wrapper button.authorize').click();
    const logout = page.locator('.modal-ux button', { hasText: 'Logout' });
    if ((await logout.count()) > 0) {
      await logout.first().click(); // already authorized: drop the old token first
    }
    await page.locator('.modal-ux input[type=text]').fill(accessToken);
    await page.locator('.modal-ux .auth-btn-wrapper button.authorize').click();
    await page.locator('.modal-ux button.btn-done').click();
  }

  it('enables TOTP in "Try it out", signs in with a computed code, and shows the audit rows', async () => {
    // The app's clock steps 30 s between the confirm and the sign-in: a code is accepted once per step.
    let now = Math.floor(Date.now() / 30_000) * 30_000 + 1000;
    jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(now));
    const account = await signUp(t, capture);
    const credentials = { email: account.email, password: account.password };

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));

    const login = await tryItOut(page, 'login', 'auth', credentials);
    expect(login.status).toBe('200');
    await authorize(page, JSON.parse(login.text).accessToken as string);

    const setup = await tryItOut(page, 'setupTotp', 'auth');
    expect(setup.status).toBe('200');
    const { secret, otpauthUrl } = JSON.parse(setup.text) as { secret: string; otpauthUrl: string };
    expect(otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
    const confirm = await tryItOut(page, 'confirmTotp', 'auth', { code: totpCode(secret, now) });
    expect(confirm.status).toBe('200');
    expect((JSON.parse(confirm.text) as { recoveryCodes: string[] }).recoveryCodes).toHaveLength(10);
    await page.screenshot({ path: `${SCREENSHOTS}/docs-totp-confirmed.png`, fullPage: false });
    now += 30_000;

    const challenge = await tryItOut(page, 'login', 'auth', credentials);
    expect(challenge.status).toBe('200');
    const { mfaRequired, mfaToken } = JSON.parse(challenge.text) as {
      mfaRequired: boolean;
      mfaToken: string;
    };
    expect(mfaRequired).toBe(true);
    const finished = await tryItOut(page, 'loginMfa', 'auth', { mfaToken, code: totpCode(secret, now) });
    expect(finished.status).toBe('200');
    const signedIn = JSON.parse(finished.text) as { accessToken: string; user: { mfaEnabled: boolean } };
    expect(signedIn.user.mfaEnabled).toBe(true);
    await authorize(page, signedIn.accessToken);

    const trail = await tryItOut(page, 'listMyAuditEvents', 'users');
    expect(trail.status).toBe('200');
    const events = (JSON.parse(trail.text) as { items: { event: string }[] }).items.map((e) => e.event);
    expect(events).toEqual(
      expect.arrayContaining([
        'mfa.setup_started',
        'mfa.enabled',
        'auth.mfa_required',
        'auth.login_succeeded',
      ]),
    );
    await page.screenshot({ path: `${SCREENSHOTS}/docs-totp-audit-events.png`, fullPage: false });
    const [succeeded] = (await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id })).slice(
      -1,
    );
    expect(succeeded.metadata).toMatchObject({ method: 'totp' });
    expect(errors).toEqual([]);
    await page.close();
  });
});
