import { Session } from '../src/auth/session.entity.js';
import { auditEvents, logIn, signUp } from './support/accounts.js';
import { SmtpCapture } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

/** Issue 12, item 8 ("Bounded by design"): sessions per account are capped and listed by page. */
describe('sessions per account', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({
      SESSIONS_PER_USER_MAX: '3',
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '50ms',
    });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  it('revokes the oldest beyond SESSIONS_PER_USER_MAX, with its reason, audited', async () => {
    const account = await signUp(t, capture);
    const logins = [];
    for (let i = 0; i < 5; i += 1) {
      logins.push(await logIn(t, account, { 'user-agent': `device ${i}` }));
    }
    const rows = await t.dataSource.getRepository(Session).find({
      where: { userId: account.id },
      order: { id: 'ASC' },
    });
    expect(rows.map((r) => r.revokedReason)).toEqual(['session_limit', 'session_limit', null, null, null]);
    // The oldest token stops working at once; the newest three still work.
    const me = (token: string) => t.request('/api/v1/users/me', { token });
    expect((await me(logins[0].accessToken)).status).toBe(401);
    expect((await me(logins[1].accessToken)).status).toBe(401);
    expect((await me(logins[4].accessToken)).status).toBe(200);
    const revoked = await auditEvents(t, { event: 'session.revoked', userId: account.id });
    expect(revoked.map((e) => e.metadata)).toEqual([
      { sessionIds: [rows[0].id], reason: 'session_limit' },
      { sessionIds: [rows[1].id], reason: 'session_limit' },
    ]);
  });

  it('lists sessions by keyset page: limit, cursor, newest first', async () => {
    const account = await signUp(t, capture);
    const sessions = [];
    for (let i = 0; i < 3; i += 1) {
      sessions.push(await logIn(t, account, { 'user-agent': `device ${i}` }));
    }
    const token = sessions[2].accessToken;
    const first = await t.request('/api/v1/auth/sessions?limit=2', { token });
    expect(first.status).toBe(200);
    expect(first.body.items.map((s: { userAgent: string }) => s.userAgent)).toEqual(['device 2', 'device 1']);
    expect(first.body.items[0].current).toBe(true);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await t.request(`/api/v1/auth/sessions?limit=2&cursor=${first.body.nextCursor}`, {
      token,
    });
    expect(second.body).toEqual({
      items: [expect.objectContaining({ userAgent: 'device 0', current: false })],
      nextCursor: null,
    });
    expect((await t.request('/api/v1/auth/sessions?limit=101', { token })).status).toBe(400);
    expect((await t.request('/api/v1/auth/sessions?cursor=nope!', { token })).body.code).toBe(
      'CURSOR_INVALID',
    );
  });
});
