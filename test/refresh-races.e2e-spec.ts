import { auditEvents, logIn, signUp } from './support/accounts.js';
import { SmtpCapture } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const api = '/api/v1';
/** Short, so the replay-after-grace test waits for real; long enough for ten refreshes on two cores. */
const GRACE_MS = 3000;

describe('refresh races (DESIGN §5)', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '50ms',
      REFRESH_GRACE: `${GRACE_MS}ms`,
      AUTH_THROTTLE_IP_LIMIT: '1000',
    });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  const refresh = (refreshToken: string) =>
    t.request(`${api}/auth/refresh`, { method: 'POST', body: { refreshToken } });
  const me = (token: string) => t.request(`${api}/users/me`, { token });
  const sessionRow = async (userId: number) => {
    const [row] = await t.dataSource.query(
      'SELECT revoked_at, revoked_reason FROM sessions WHERE user_id = ?',
      [userId],
    );
    return row as { revoked_at: unknown; revoked_reason: string | null };
  };

  it.each([2, 10])(
    'keeps the session alive when %i concurrent refreshes share one token: every answer is 200 and every pair works',
    async (n) => {
      const account = await signUp(t, capture);
      const session = await logIn(t, account);

      const answers = await Promise.all(Array.from({ length: n }, () => refresh(session.refreshToken)));

      expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));
      // One chain: every caller holds the session's current refresh token, none of them stored raw.
      const refreshTokens = new Set(answers.map((a) => a.body.refreshToken as string));
      expect(refreshTokens.size).toBe(1);
      for (const answer of answers) {
        expect((await me(answer.body.accessToken)).status).toBe(200);
      }
      expect(await sessionRow(account.id)).toMatchObject({ revoked_at: null, revoked_reason: null });
      expect(await auditEvents(t, { event: 'auth.refreshed', userId: account.id })).toHaveLength(1);
      expect(await auditEvents(t, { event: 'auth.refresh_replayed', userId: account.id })).toHaveLength(
        n - 1,
      );
      expect(await auditEvents(t, { event: 'auth.refresh_reused', userId: account.id })).toHaveLength(0);
      const stored = JSON.stringify(
        await t.dataSource.query(
          'SELECT s.refresh_token_hash, h.token_hash FROM sessions s LEFT JOIN refresh_token_history h ON h.session_id = s.id WHERE s.user_id = ?',
          [account.id],
        ),
      );
      expect(stored).not.toContain(session.refreshToken);
      expect(stored).not.toContain([...refreshTokens][0]);

      // Whichever tab refreshes next moves the one session along.
      const next = await refresh(answers[n - 1].body.refreshToken);
      expect(next.status).toBe(200);
      expect((await me(next.body.accessToken)).status).toBe(200);
    },
  );

  it('revokes the session and audits the reuse when a rotated-out token comes back after the grace', async () => {
    const account = await signUp(t, capture);
    const session = await logIn(t, account);
    const rotated = await refresh(session.refreshToken);
    expect(rotated.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 200));

    const replay = await refresh(session.refreshToken);

    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('REFRESH_INVALID');
    expect(await sessionRow(account.id)).toMatchObject({ revoked_reason: 'refresh_reused' });
    const reused = await auditEvents(t, { event: 'auth.refresh_reused', userId: account.id });
    expect(reused).toHaveLength(1);
    expect(reused[0].outcome).toBe('failure');
    // The whole session is dead: the newest pair too, and the API says why (RFC 6750 §3.1).
    expect((await refresh(rotated.body.refreshToken)).body.code).toBe('REFRESH_INVALID');
    const revoked = await me(rotated.body.accessToken);
    expect(revoked.status).toBe(401);
    expect(revoked.body.code).toBe('UNAUTHENTICATED');
    expect(revoked.headers.get('www-authenticate')).toMatch(
      /^Bearer realm="gatehouse", error="invalid_token"/,
    );
  });

  it('gives nothing for a replay within the grace once the session is logged out', async () => {
    const account = await signUp(t, capture);
    const session = await logIn(t, account);
    const rotated = await refresh(session.refreshToken);
    expect(
      (await t.request(`${api}/auth/logout`, { method: 'POST', token: rotated.body.accessToken })).status,
    ).toBe(204);

    const replay = await refresh(session.refreshToken);

    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('REFRESH_INVALID');
    expect(await auditEvents(t, { event: 'auth.refresh_replayed', userId: account.id })).toHaveLength(0);
  });
});
