import type { Browser, Page } from 'playwright-core';
import { logIn, signUp } from './support/accounts.js';
import { type BrowserSuite, describeInBrowser, SCREENSHOTS, startBrowserSuite } from './support/browser.js';
import type { SmtpCapture } from './support/smtp-capture.js';
import type { TestApp } from './support/test-app.js';

/**
 * The OpenAPI UI is the operators' console: an admin signs in through "Try it out", authorizes with
 * the token, and lists audit events, in headless Chromium, as a person would.
 */
describeInBrowser('the OpenAPI UI at /docs', () => {
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

  /** Expands an operation, presses "Try it out", optionally fills the body, executes it. */
  async function tryItOut(
    page: Page,
    operationId: string,
    tag: string,
    body?: object,
  ): Promise<{ status: string; text: string }> {
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

  it('signs an admin in through "Try it out", authorizes, and lists audit events', async () => {
    const admin = await signUp(t, capture);
    await t.dataSource.query("UPDATE users SET role = 'admin' WHERE id = ?", [admin.id]);
    const someone = await signUp(t, capture);
    await logIn(t, someone);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${t.url}/docs`);
    await page.locator('.swagger-ui .info .title').waitFor();
    await expect(page.locator('.swagger-ui .info .title').textContent()).resolves.toContain('Gatehouse');
    for (const tag of ['admin', 'auth', 'todos', 'users', 'health']) {
      await expect(page.locator(`#operations-tag-${tag}`).count()).resolves.toBe(1);
    }

    const login = await tryItOut(page, 'login', 'auth', {
      email: admin.email,
      password: admin.password,
    });
    expect(login.status).toBe('200');
    const accessToken = JSON.parse(login.text).accessToken as string;
    expect(accessToken.split('.')).toHaveLength(3);

    await page.locator('.auth-wrapper button.authorize').click();
    await page.locator('.modal-ux input[type=text]').fill(accessToken);
    await page.locator('.modal-ux .auth-btn-wrapper button.authorize').click();
    await page.locator('.modal-ux button.btn-done').click();

    // Authorization survives a reload (persistAuthorization).
    await page.reload();
    await page.locator('.swagger-ui .info .title').waitFor();
    await page.locator('.auth-wrapper button.authorize.locked').waitFor();

    const events = await tryItOut(page, 'searchAuditEvents', 'admin');
    expect(events.status).toBe('200');
    const listed = JSON.parse(events.text) as { items: { event: string }[] };
    expect(listed.items.map((e) => e.event)).toEqual(
      expect.arrayContaining(['auth.login_succeeded', 'user.registered']),
    );
    await page.screenshot({ path: `${SCREENSHOTS}/docs-admin-audit-events.png`, fullPage: false });
    expect(errors).toEqual([]);
    await page.close();
  });
});
