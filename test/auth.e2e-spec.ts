import { JwtService } from '@nestjs/jwt';
import { Clock } from '../src/common/clock.js';
import { User } from '../src/users/user.entity.js';
import {
  type Account,
  auditEvents,
  comparable,
  logIn,
  mailsTo,
  mailTo,
  PASSWORD,
  signUp,
  SUBJECTS,
} from './support/accounts.js';
import { newUser, uniqueEmail } from './support/factories.js';
import { linkFrom, SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const api = '/api/v1';

describe('accounts and sessions', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '50ms',
      // These tests follow links through resends and repeats; the mail budget has its own suite.
      MAIL_BUDGET_INTERVAL: '1ms',
      MAIL_BUDGET_PER_HOUR: '1000',
      AUTH_LOCKOUT_THRESHOLD: '3',
      // The reuse tests replay at once; the grace for racing refreshes has its own suite (refresh-races).
      REFRESH_GRACE: '0',
    });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  const me = (token: string) => t.request(`${api}/users/me`, { token });
  const post = (path: string, body: unknown, token?: string) =>
    t.request(`${api}${path}`, { method: 'POST', body, token });

  it('walks the happy path: register, mail, verify, login, me, refresh, logout', async () => {
    const email = uniqueEmail('happy');
    const registered = await post('/auth/register', {
      email: email.toUpperCase(),
      password: PASSWORD,
      username: 'Happy_One',
    });
    expect(registered.status).toBe(202);

    const mail = await mailTo(capture, email, SUBJECTS.verify);
    expect(mail.html).toContain('http://gatehouse.test/verify-email?token=');
    const link = linkFrom(mail, 'http://gatehouse.test/verify-email');
    // Opening the landing page changes nothing; its button POSTs the token.
    const page = await t.request(new URL(link).pathname + new URL(link).search);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Confirm your email');
    expect(page.text).not.toContain(tokenFrom(mail));
    expect((await post('/auth/login', { email, password: PASSWORD })).body.code).toBe('EMAIL_NOT_VERIFIED');

    expect((await post('/auth/verify-email', { token: tokenFrom(mail) })).status).toBe(200);
    const login = await post('/auth/login', { email, password: PASSWORD });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({
      tokenType: 'Bearer',
      expiresIn: 900,
      user: { email, username: 'happy_one', isVerified: true },
    });
    expect(login.headers.get('cache-control')).toBe('no-store');

    const profile = await me(login.body.accessToken);
    expect(profile.status).toBe(200);
    expect(profile.body.lastLoginAt).not.toBeNull();
    expect(profile.body).not.toHaveProperty('passwordHash');

    const refreshed = await post('/auth/refresh', { refreshToken: login.body.refreshToken });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refreshToken).not.toBe(login.body.refreshToken);
    expect((await me(refreshed.body.accessToken)).status).toBe(200);

    expect((await post('/auth/logout', undefined, refreshed.body.accessToken)).status).toBe(204);
    expect((await me(refreshed.body.accessToken)).status).toBe(401);
    expect((await me(login.body.accessToken)).status).toBe(401);
    expect((await post('/auth/refresh', { refreshToken: refreshed.body.refreshToken })).status).toBe(401);

    const user = await t.dataSource.getRepository(User).findOneByOrFail({ email });
    const events = (await auditEvents(t, { userId: user.id })).map((e) => e.event);
    expect(events).toEqual(
      expect.arrayContaining([
        'user.registered',
        'email.verification_sent',
        'email.verified',
        'auth.login_succeeded',
        'auth.refreshed',
        'auth.logout',
      ]),
    );
  });

  describe('no enumeration', () => {
    let known: Account;

    beforeAll(async () => {
      known = await signUp(t, capture);
    });

    it('answers register, resend and forgot the same for known and unknown addresses', async () => {
      const unknown = uniqueEmail('nobody');
      for (const [path, body] of [
        ['/auth/register', (email: string) => ({ email, password: 'another fine passphrase' })],
        ['/auth/resend-verification', (email: string) => ({ email })],
        ['/auth/forgot-password', (email: string) => ({ email })],
      ] as const) {
        const a = await post(path, body(known.email));
        const b = await post(path, body(unknown));
        expect(a.status).toBe(202);
        expect(b.status).toBe(a.status);
        expect(b.body).toEqual(a.body);
      }
      // The owner of the known address hears about it; the password was not changed.
      await mailTo(capture, known.email, SUBJECTS.exists);
      await logIn(t, known);
      const existing = await auditEvents(t, { event: 'user.register_existing', userId: known.id });
      expect(existing).toHaveLength(1);
    });

    it('sends at most one "account exists" mail per window', async () => {
      // The outbox row is written in the request's transaction, so counting rows needs no waiting.
      const queued = async () =>
        Number(
          (
            await t.dataSource.query(
              "SELECT COUNT(*) AS n FROM mail_outbox WHERE template = 'account-exists' AND recipient = ?",
              [known.email],
            )
          )[0].n,
        );
      expect(await queued()).toBe(1); // from the test above
      await post('/auth/register', { email: known.email, password: 'yet another passphrase' });
      await post('/auth/register', { email: known.email, password: 'yet another passphrase' });
      expect(await queued()).toBe(1);
      const existing = await auditEvents(t, { event: 'user.register_existing', userId: known.id });
      expect(existing.map((e) => e.metadata?.mailed)).toEqual([true, false, false]);

      // Once the window has passed, the owner hears about it again.
      jest.spyOn(t.app.get(Clock), 'now').mockReturnValue(new Date(Date.now() + 61 * 60 * 1000));
      await post('/auth/register', { email: known.email, password: 'yet another passphrase' });
      expect(await queued()).toBe(2);
    });

    it('answers resend and forgot after the same floor for known and unknown addresses', async () => {
      for (const path of ['/auth/resend-verification', '/auth/forgot-password']) {
        for (const email of [known.email, uniqueEmail('timing')]) {
          const started = performance.now();
          expect((await post(path, { email })).status).toBe(202);
          expect(performance.now() - started).toBeGreaterThanOrEqual(145);
        }
      }
    });

    it('answers an unknown email and a wrong password with the same 401', async () => {
      const wrong = await post('/auth/login', { email: known.email, password: 'not the password at all' });
      const unknown = await post('/auth/login', {
        email: uniqueEmail('ghost'),
        password: 'not the password at all',
      });
      expect(wrong.status).toBe(401);
      expect(comparable(unknown.body)).toEqual(comparable(wrong.body));
      expect(wrong.body.code).toBe('INVALID_CREDENTIALS');
      const failures = await auditEvents(t, { event: 'auth.login_failed' });
      expect(failures.map((e) => e.metadata?.reason)).toEqual(
        expect.arrayContaining(['wrong_password', 'unknown_email']),
      );
    });
  });

  describe('passwords', () => {
    it('never truncates: two passwords sharing their first 72 bytes are different passwords', async () => {
      const prefix = 'p'.repeat(72);
      const account = await signUp(t, capture, { password: `${prefix}-first` });
      expect((await post('/auth/login', { email: account.email, password: `${prefix}-second` })).status).toBe(
        401,
      );
      await logIn(t, account);
    });

    it('accepts a 64-emoji password', async () => {
      const account = await signUp(t, capture, { password: '🔐🦄'.repeat(32) });
      await logIn(t, account);
      expect((await post('/auth/login', { email: account.email, password: '🔐🦄'.repeat(31) })).status).toBe(
        401,
      );
    });

    it.each([
      ['too short', 'short1!'],
      ['a common password', 'password123'],
      ['too long', 'x'.repeat(129)],
    ])('rejects %s', async (_label, password) => {
      const email = uniqueEmail('weak');
      const res = await post('/auth/register', { email, password });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.errors[0].field).toBe('password');
      expect(await t.dataSource.getRepository(User).countBy({ email })).toBe(0);
    });

    it('answers 400, not 500, for an email that only grows too long once normalized', async () => {
      const email = `${'İ'.repeat(32)}@${`${'İ'.repeat(40)}.`.repeat(3)}com`;
      expect(email.length).toBeLessThan(254);
      const res = await post('/auth/register', { email, password: PASSWORD });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    });

    it('refuses a taken username at registration with 409, creating nothing', async () => {
      const first = uniqueEmail('handle');
      expect(
        (await post('/auth/register', { email: first, password: PASSWORD, username: 'unique_handle' }))
          .status,
      ).toBe(202);
      const second = uniqueEmail('handle2');
      const res = await post('/auth/register', {
        email: second,
        password: PASSWORD,
        username: 'Unique_Handle',
      });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('USERNAME_TAKEN');
      expect(await t.dataSource.getRepository(User).countBy({ email: second })).toBe(0);
    });

    it('rejects the account email as its password', async () => {
      const email = uniqueEmail('self');
      const res = await post('/auth/register', { email, password: email });
      expect(res.status).toBe(400);
    });
  });

  describe('email verification tokens', () => {
    it('refuses a reused token and an expired one', async () => {
      const email = uniqueEmail('expiry');
      await post('/auth/register', { email, password: PASSWORD });
      const first = tokenFrom(await mailTo(capture, email, SUBJECTS.verify));
      expect((await post('/auth/verify-email', { token: first })).status).toBe(200);
      const reused = await post('/auth/verify-email', { token: first });
      expect(reused.status).toBe(400);
      expect(reused.body.code).toBe('TOKEN_INVALID');

      const other = uniqueEmail('expiry2');
      await post('/auth/register', { email: other, password: PASSWORD });
      const token = tokenFrom(await mailTo(capture, other, SUBJECTS.verify));
      const clock = t.app.get(Clock);
      const now = Date.now();
      jest.spyOn(clock, 'now').mockReturnValue(new Date(now + 24 * 3600 * 1000 + 60_000));
      const expired = await post('/auth/verify-email', { token });
      expect(expired.body.code).toBe('TOKEN_EXPIRED');
    });

    it('resends a working link to an unverified account', async () => {
      const email = uniqueEmail('resend');
      await post('/auth/register', { email, password: PASSWORD });
      await mailTo(capture, email, SUBJECTS.verify);
      expect((await post('/auth/resend-verification', { email })).status).toBe(202);
      await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length === 2);
      const token = tokenFrom(mailsTo(capture, email, SUBJECTS.verify)[1]);
      expect((await post('/auth/verify-email', { token })).status).toBe(200);
    });
  });

  describe('refresh tokens', () => {
    it('revokes the whole session when a rotated-out token is replayed', async () => {
      const account = await signUp(t, capture);
      const session = await logIn(t, account);
      const rotated = await post('/auth/refresh', { refreshToken: session.refreshToken });
      expect(rotated.status).toBe(200);

      const replay = await post('/auth/refresh', { refreshToken: session.refreshToken });
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('REFRESH_INVALID');
      // The thief's replay killed the legitimate holder's newer tokens too.
      expect((await post('/auth/refresh', { refreshToken: rotated.body.refreshToken })).status).toBe(401);
      expect((await me(rotated.body.accessToken)).status).toBe(401);
      const reused = await auditEvents(t, { event: 'auth.refresh_reused', userId: account.id });
      expect(reused).toHaveLength(1);
      expect(reused[0].outcome).toBe('failure');
    });

    it('revokes the session when any earlier token of it is replayed, not only the last one', async () => {
      const account = await signUp(t, capture);
      const first = await logIn(t, account);
      const second = await post('/auth/refresh', { refreshToken: first.refreshToken });
      const third = await post('/auth/refresh', { refreshToken: second.body.refreshToken });
      expect(third.status).toBe(200);
      expect((await post('/auth/refresh', { refreshToken: first.refreshToken })).status).toBe(401);
      expect((await me(third.body.accessToken)).status).toBe(401);
      expect(await auditEvents(t, { event: 'auth.refresh_reused', userId: account.id })).toHaveLength(1);
      const history = await t.dataSource.query('SELECT token_hash FROM refresh_token_history');
      expect(JSON.stringify(history)).not.toContain(first.refreshToken);
    });

    it('never extends the absolute expiry of the session', async () => {
      const account = await signUp(t, capture);
      const session = await logIn(t, account);
      const [before] = await t.dataSource.query('SELECT expires_at FROM sessions WHERE user_id = ?', [
        account.id,
      ]);
      await post('/auth/refresh', { refreshToken: session.refreshToken });
      const [after] = await t.dataSource.query('SELECT expires_at FROM sessions WHERE user_id = ?', [
        account.id,
      ]);
      expect(new Date(after.expires_at).getTime()).toBe(new Date(before.expires_at).getTime());
    });

    it('refuses garbage and an access token as a refresh token, and a refresh token as a bearer', async () => {
      const account = await signUp(t, capture);
      const session = await logIn(t, account);
      expect((await post('/auth/refresh', { refreshToken: 'garbage' })).status).toBe(401);
      expect((await post('/auth/refresh', { refreshToken: session.accessToken })).status).toBe(401);
      expect((await me(session.refreshToken)).status).toBe(401);
    });
  });

  describe('access tokens', () => {
    let account: Account;
    let token: string;
    let claims: { sub: string; sid: number };

    beforeAll(async () => {
      account = await signUp(t, capture);
      token = (await logIn(t, account)).accessToken;
      claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    });

    const sign = (options: Record<string, unknown>, payload: object = claims) =>
      new JwtService().sign(
        { sub: (payload as { sub: string }).sub, sid: (payload as { sid: number }).sid },
        {
          secret: t.config.auth.jwtSecret,
          issuer: t.config.auth.jwtIssuer,
          audience: t.config.auth.jwtAudience,
          expiresIn: 60,
          ...options,
        },
      );

    it('accepts the genuine token', async () => {
      expect((await me(token)).status).toBe(200);
      expect((await me(sign({ algorithm: 'HS256' }))).status).toBe(200);
    });

    it.each([
      ['another algorithm (HS512)', () => sign({ algorithm: 'HS512' })],
      ['a wrong issuer', () => sign({ issuer: 'someone-else' })],
      ['a wrong audience', () => sign({ audience: 'another-api' })],
      ['an expired token', () => sign({ expiresIn: -10 })],
      ['another secret', () => sign({ secret: 'x'.repeat(48) })],
      [
        'alg none',
        () => {
          const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
          return `${header}.${token.split('.')[1]}.`;
        },
      ],
      [
        'a flipped byte',
        () => {
          const [h, p, s] = token.split('.');
          const flipped = Buffer.from(p, 'base64url');
          flipped[5] ^= 1;
          return `${h}.${flipped.toString('base64url')}.${s}`;
        },
      ],
    ])('refuses %s', async (_label, forge) => {
      const res = await me(forge());
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHENTICATED');
    });
  });

  describe('password reset', () => {
    it('sets the password, revokes every session and old access token, and does not log in', async () => {
      const account = await signUp(t, capture);
      const a = await logIn(t, account);
      const b = await logIn(t, account);
      expect((await post('/auth/forgot-password', { email: account.email })).status).toBe(202);
      const mail = await mailTo(capture, account.email, SUBJECTS.reset);
      expect(linkFrom(mail, 'http://gatehouse.test/reset-password')).toContain('token=');

      const reset = await post('/auth/reset-password', {
        token: tokenFrom(mail),
        password: 'a brand new passphrase',
      });
      expect(reset.status).toBe(204);
      expect(reset.text).toBe('');
      for (const session of [a, b]) {
        expect((await me(session.accessToken)).status).toBe(401);
        expect((await post('/auth/refresh', { refreshToken: session.refreshToken })).status).toBe(401);
      }
      expect((await post('/auth/login', { email: account.email, password: account.password })).status).toBe(
        401,
      );
      await logIn(t, { email: account.email, password: 'a brand new passphrase' });
      await mailTo(capture, account.email, SUBJECTS.changed);
      expect(await auditEvents(t, { event: 'password.reset', userId: account.id })).toHaveLength(1);
      expect(await auditEvents(t, { event: 'password.reset_requested', userId: account.id })).toHaveLength(1);
      // The link is single use.
      expect(
        (await post('/auth/reset-password', { token: tokenFrom(mail), password: 'a third passphrase' })).body
          .code,
      ).toBe('TOKEN_INVALID');
    });

    it('keeps only the newest reset link alive and refuses a weak password without burning the link', async () => {
      const account = await signUp(t, capture);
      await post('/auth/forgot-password', { email: account.email });
      await post('/auth/forgot-password', { email: account.email });
      await capture.waitFor(() => mailsTo(capture, account.email, SUBJECTS.reset).length === 2);
      const [older, newer] = mailsTo(capture, account.email, SUBJECTS.reset).map(tokenFrom);
      expect(
        (await post('/auth/reset-password', { token: older, password: 'a brand new passphrase' })).body.code,
      ).toBe('TOKEN_INVALID');
      const weak = await post('/auth/reset-password', { token: newer, password: 'password' });
      expect(weak.status).toBe(400);
      expect(
        (await post('/auth/reset-password', { token: newer, password: 'a brand new passphrase' })).status,
      ).toBe(204);
    });

    it('marks the email verified (the link proved the address)', async () => {
      const email = uniqueEmail('unverified-reset');
      await post('/auth/register', { email, password: PASSWORD });
      await post('/auth/forgot-password', { email });
      const token = tokenFrom(await mailTo(capture, email, SUBJECTS.reset));
      await post('/auth/reset-password', { token, password: 'a brand new passphrase' });
      expect((await t.dataSource.getRepository(User).findOneByOrFail({ email })).isVerified).toBe(true);
    });
  });

  describe('lockout', () => {
    it('locks an unknown address exactly like a known one', async () => {
      const known = await signUp(t, capture);
      const unknown = uniqueEmail('never-registered');
      const answers = async (email: string) => {
        const out = [];
        for (let i = 0; i < 5; i += 1) {
          const res = await post('/auth/login', { email, password: 'wrong wrong wrong' });
          out.push(`${res.status} ${res.body.code}`);
        }
        return out;
      };
      const knownAnswers = await answers(known.email);
      expect(knownAnswers).toEqual([
        '401 INVALID_CREDENTIALS',
        '401 INVALID_CREDENTIALS',
        '401 INVALID_CREDENTIALS',
        '429 ACCOUNT_LOCKED',
        '429 ACCOUNT_LOCKED',
      ]);
      expect(await answers(unknown)).toEqual(knownAnswers);
    });

    it('locks once under parallel guesses, and keeps the lock', async () => {
      const account = await signUp(t, capture);
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          post('/auth/login', { email: account.email, password: 'parallel wrong guess' }),
        ),
      );
      // Guesses already past the check when the lock lands are still answered as failures.
      expect(results.every((r) => r.status === 401 || r.status === 429)).toBe(true);
      expect(results.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(3);
      expect(await auditEvents(t, { event: 'auth.locked', userId: account.id })).toHaveLength(1);
      const locked = await post('/auth/login', { email: account.email, password: account.password });
      expect(locked.status).toBe(429);
    });

    it('does not count a right password toward a lockout, even when the email is unverified', async () => {
      const email = uniqueEmail('unverified-lock');
      await post('/auth/register', { email, password: PASSWORD });
      for (let i = 0; i < 5; i += 1) {
        expect((await post('/auth/login', { email, password: PASSWORD })).body.code).toBe(
          'EMAIL_NOT_VERIFIED',
        );
      }
    });

    it('locks after the threshold with Retry-After; a reset unlocks', async () => {
      const account = await signUp(t, capture);
      for (let i = 0; i < 3; i += 1) {
        expect(
          (await post('/auth/login', { email: account.email, password: 'wrong wrong wrong' })).status,
        ).toBe(401);
      }
      const locked = await post('/auth/login', { email: account.email, password: account.password });
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('ACCOUNT_LOCKED');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await auditEvents(t, { event: 'auth.locked', userId: account.id })).toHaveLength(1);

      // Forgot-password still works while locked, and the reset unlocks.
      await post('/auth/forgot-password', { email: account.email });
      const token = tokenFrom(await mailTo(capture, account.email, SUBJECTS.reset));
      await post('/auth/reset-password', { token, password: 'unlocked passphrase now' });
      await logIn(t, { email: account.email, password: 'unlocked passphrase now' });
    });
  });

  describe('sessions', () => {
    it('lists your sessions, revokes one, and answers 404 for someone else’s', async () => {
      const alice = await signUp(t, capture);
      const bob = await signUp(t, capture);
      const a1 = await logIn(t, alice, { 'user-agent': 'Laptop' });
      const a2 = await logIn(t, alice, { 'user-agent': 'Phone' });
      const b1 = await logIn(t, bob);

      const list = await t.request(`${api}/auth/sessions`, { token: a1.accessToken });
      expect(list.status).toBe(200);
      expect(list.body.items).toHaveLength(2);
      expect(list.body.nextCursor).toBeNull();
      expect(list.body.items.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
      const phone = list.body.items.find((s: { userAgent: string }) => s.userAgent === 'Phone');

      const bobsList = await t.request(`${api}/auth/sessions`, { token: b1.accessToken });
      const bobsSession = bobsList.body.items[0].id;
      const foreign = await t.request(`${api}/auth/sessions/${bobsSession}`, {
        method: 'DELETE',
        token: a1.accessToken,
      });
      expect(foreign.status).toBe(404);
      expect((await me(b1.accessToken)).status).toBe(200);

      expect(
        (await t.request(`${api}/auth/sessions/${phone.id}`, { method: 'DELETE', token: a1.accessToken }))
          .status,
      ).toBe(204);
      expect((await me(a2.accessToken)).status).toBe(401);
      expect((await me(a1.accessToken)).status).toBe(200);
      expect(await auditEvents(t, { event: 'session.revoked', userId: alice.id })).toHaveLength(1);
    });

    it('logout-all revokes every session', async () => {
      const account = await signUp(t, capture);
      const a = await logIn(t, account);
      const b = await logIn(t, account);
      expect((await post('/auth/logout-all', undefined, a.accessToken)).status).toBe(204);
      expect((await me(a.accessToken)).status).toBe(401);
      expect((await me(b.accessToken)).status).toBe(401);
      expect(await auditEvents(t, { event: 'auth.logout_all', userId: account.id })).toHaveLength(1);
    });
  });

  describe('your account', () => {
    it('changes the password, keeps this session and kills the others', async () => {
      const account = await signUp(t, capture);
      const keep = await logIn(t, account);
      const other = await logIn(t, account);
      const put = (body: object) =>
        t.request(`${api}/users/me/password`, { method: 'PUT', body, token: keep.accessToken });

      const wrong = await put({ currentPassword: 'not it at all', newPassword: 'a changed passphrase' });
      expect(wrong.status).toBe(401);
      expect(wrong.body.code).toBe('INVALID_PASSWORD');
      expect(await auditEvents(t, { event: 'password.change_failed', userId: account.id })).toHaveLength(1);
      expect((await put({ currentPassword: account.password, newPassword: 'password1' })).status).toBe(400);

      expect(
        (await put({ currentPassword: account.password, newPassword: 'a changed passphrase' })).status,
      ).toBe(204);
      expect((await me(keep.accessToken)).status).toBe(200);
      expect((await me(other.accessToken)).status).toBe(401);
      await mailTo(capture, account.email, SUBJECTS.changed);
      expect(await auditEvents(t, { event: 'password.changed', userId: account.id })).toHaveLength(1);
      await logIn(t, { email: account.email, password: 'a changed passphrase' });
    });

    it('updates the username, refuses email changes and taken names', async () => {
      const a = await signUp(t, capture);
      const b = await signUp(t, capture);
      const ta = (await logIn(t, a)).accessToken;
      const tb = (await logIn(t, b)).accessToken;
      const patch = (token: string, body: object) =>
        t.request(`${api}/users/me`, { method: 'PATCH', body, token });

      const renamed = await patch(ta, { username: 'Grace.H' });
      expect(renamed.status).toBe(200);
      expect(renamed.body.username).toBe('grace.h');
      expect((await patch(tb, { username: 'GRACE.h' })).body.code).toBe('USERNAME_TAKEN');
      const immutable = await patch(ta, { email: 'new@example.test' });
      expect(immutable.status).toBe(400);
      expect(immutable.body.code).toBe('EMAIL_IMMUTABLE');
      expect((await patch(ta, { username: 'no spaces allowed' })).status).toBe(400);
      expect(await auditEvents(t, { event: 'user.updated', userId: a.id })).toHaveLength(1);
    });

    it('refuses mass assignment of protected fields', async () => {
      const email = uniqueEmail('mass');
      for (const extra of [{ isVerified: true }, { role: 'admin' }, { id: 1 }, { is_verified: 1 }]) {
        const res = await post('/auth/register', { email, password: PASSWORD, ...extra });
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('VALIDATION_FAILED');
      }
      expect(await t.dataSource.getRepository(User).countBy({ email })).toBe(0);

      const account = await signUp(t, capture);
      const token = (await logIn(t, account)).accessToken;
      for (const extra of [{ role: 'admin' }, { isVerified: false }, { id: 99 }]) {
        const res = await t.request(`${api}/users/me`, { method: 'PATCH', body: extra, token });
        expect(res.status).toBe(400);
      }
      const user = await t.dataSource.getRepository(User).findOneByOrFail({ id: account.id });
      expect(user).toMatchObject({ role: 'user', isVerified: true });
    });

    it('deletes the account with its sessions and todos; the trail stays; the email can register again', async () => {
      const account = await signUp(t, capture);
      const session = await logIn(t, account);
      await t.request(`${api}/todos`, {
        method: 'POST',
        body: { title: 'to be deleted' },
        token: session.accessToken,
      });
      const del = (password: string) =>
        t.request(`${api}/users/me`, { method: 'DELETE', body: { password }, token: session.accessToken });
      expect((await del('wrong password here')).status).toBe(401);
      expect(await auditEvents(t, { event: 'user.delete_failed', userId: account.id })).toHaveLength(1);
      expect((await del(account.password)).status).toBe(204);

      expect((await me(session.accessToken)).status).toBe(401);
      for (const table of ['users', 'sessions', 'todos', 'email_verification_tokens']) {
        const column = table === 'users' ? 'id' : 'user_id';
        const rows = await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [
          account.id,
        ]);
        expect(Number(rows[0].n)).toBe(0);
      }
      const trail = await auditEvents(t, { userId: account.id });
      expect(trail.map((e) => e.event)).toEqual(expect.arrayContaining(['user.registered', 'user.deleted']));
      await signUp(t, capture, { email: account.email });
    });
  });

  it('leaves exactly one row after concurrent registrations of one address in any case', async () => {
    const email = uniqueEmail('race');
    const variants = [email, email.toUpperCase(), ` ${email}`, email.replace(/^./, (c) => c.toUpperCase())];
    const results = await Promise.all(
      [...variants, ...variants].map((variant) =>
        post('/auth/register', { email: variant.trim(), password: PASSWORD }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(results.map(() => 202));
    expect(await t.dataSource.getRepository(User).countBy({ email })).toBe(1);
  });
});

describe('throttling', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({
      AUTH_THROTTLE_IP_LIMIT: '8',
      AUTH_THROTTLE_EMAIL_LIMIT: '3',
      AUTH_THROTTLE_WINDOW: '1m',
    });
  });

  afterAll(async () => {
    await t.close();
  });

  it('limits per email, known or not, with Retry-After', async () => {
    const email = uniqueEmail('throttle');
    const answers = [];
    for (let i = 0; i < 5; i += 1) {
      answers.push(await t.request(`${api}/auth/forgot-password`, { method: 'POST', body: { email } }));
    }
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 429, 429]);
    const last = answers[4];
    expect(last.body.code).toBe('RATE_LIMITED');
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('reports each limit in the IETF RateLimit-Policy and RateLimit fields, and Retry-After on 429', async () => {
    const email = uniqueEmail('headers');
    const answers = [];
    for (let i = 0; i < 4; i += 1) {
      answers.push(await t.request(`${api}/auth/resend-verification`, { method: 'POST', body: { email } }));
    }
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 429]);
    for (const answer of answers) {
      expect(answer.headers.get('ratelimit-policy')).toBe('"ip";q=8;w=60, "email";q=3;w=60');
    }
    const limits = answers.map((a) => rateLimit(a.headers));
    expect(limits.map((l) => l.email.r)).toEqual([2, 1, 0, 0]);
    expect(limits.map((l) => l.ip.r)).toEqual([7, 6, 5, 4]);
    for (const { ip, email: perEmail } of limits) {
      expect(ip.t).toBeGreaterThan(0);
      expect(ip.t).toBeLessThanOrEqual(60);
      expect(perEmail.t).toBeGreaterThan(0);
      expect(perEmail.t).toBeLessThanOrEqual(60);
    }
    const refused = answers[3];
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
    expect(refused.headers.get('retry-after')).toBe(String(limits[3].email.t));
    expect(answers[2].headers.get('retry-after')).toBeNull();
  });

  it('adds no rate-limit fields to routes the limits skip', async () => {
    const user = await newUser(t);
    const res = await t.request(`${api}/auth/logout`, { method: 'POST', token: user.accessToken });
    expect(res.status).toBe(204);
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(res.headers.get('ratelimit-policy')).toBeNull();
  });

  it('limits per client IP across addresses', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      statuses.push(
        (
          await t.request(`${api}/auth/login`, {
            method: 'POST',
            body: { email: uniqueEmail('ip'), password: 'whatever it is' },
          })
        ).status,
      );
    }
    expect(statuses.slice(0, 8).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(8)).toEqual([429, 429]);
  });

  it('limits password re-checks per account (change password, delete account)', async () => {
    const user = await newUser(t);
    const statuses = [];
    for (let i = 0; i < 4; i += 1) {
      const res = await t.request(`${api}/users/me/password`, {
        method: 'PUT',
        body: { currentPassword: `guess number ${i}`, newPassword: 'whatever new passphrase' },
        token: user.accessToken,
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it('limits a signed-in route per account and per IP, not per email', async () => {
    const user = await newUser(t);
    const res = await t.request(`${api}/users/me`, {
      method: 'DELETE',
      body: { password: 'not the password at all' },
      token: user.accessToken,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('ratelimit-policy')).toBe('"account";q=3;w=60, "ip";q=8;w=60');
    expect(rateLimit(res.headers).account.r).toBe(2);
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY says so', async () => {
    const res = await t.request(`${api}/auth/login`, {
      method: 'POST',
      body: { email: uniqueEmail('spoof'), password: 'whatever it is' },
      headers: { 'x-forwarded-for': '203.0.113.99' },
    });
    expect(res.status).toBe(429);
  });
});

/** Parses the RateLimit field (`"ip";r=7;t=60, "email";r=2;t=60`) into numbers per limit name. */
function rateLimit(headers: Headers): Record<string, { r: number; t: number }> {
  const field = headers.get('ratelimit') ?? '';
  return Object.fromEntries(
    field.split(', ').map((item) => {
      const [name, ...params] = item.split(';');
      const values = Object.fromEntries(params.map((p) => p.split('=')).map(([k, v]) => [k, Number(v)]));
      return [JSON.parse(name) as string, { r: values.r, t: values.t }];
    }),
  );
}
