import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { AuditService, type AuditInput } from '../src/audit/audit.service.js';
import type { LoginFailedEvent, LoginSucceededEvent, SessionRevokedEvent } from '../src/auth/auth.events.js';
import { Session as SessionRow } from '../src/auth/session.entity.js';
import { User } from '../src/users/user.entity.js';
import { auditEvents, logIn, PASSWORD, type Session, signUp } from './support/accounts.js';
import { newUser, uniqueEmail } from './support/factories.js';
import { SmtpCapture } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const api = '/api/v1';

type Seen =
  | { event: 'auth.login_succeeded'; payload: LoginSucceededEvent }
  | { event: 'auth.login_failed'; payload: LoginFailedEvent }
  | { event: 'session.revoked'; payload: SessionRevokedEvent };

/** Every auth event the app published, in order; what a team's listener would receive. */
const seen: Seen[] = [];

@Injectable()
class AuthEventsProbe {
  @OnEvent('auth.login_succeeded')
  loginSucceeded(payload: LoginSucceededEvent): void {
    seen.push({ event: 'auth.login_succeeded', payload });
  }

  @OnEvent('auth.login_failed')
  loginFailed(payload: LoginFailedEvent): void {
    seen.push({ event: 'auth.login_failed', payload });
  }

  @OnEvent('session.revoked')
  sessionRevoked(payload: SessionRevokedEvent): void {
    seen.push({ event: 'session.revoked', payload });
  }
}

@Module({ providers: [AuthEventsProbe] })
class AuthEventsProbeModule {}

/** The real AuditService, except that it can be told to fail one event: a fault inside a unit of work. */
@Injectable()
class FaultyAuditService extends AuditService {
  static failing: string | null = null;

  override async record(event: string, input?: AuditInput): Promise<void> {
    if (event === FaultyAuditService.failing) {
      throw new Error(`audit store refused ${event}`);
    }
    return super.record(event, input);
  }
}

function sessionIdOf(session: Session): number {
  return (
    JSON.parse(Buffer.from(session.accessToken.split('.')[1], 'base64url').toString()) as { sid: number }
  ).sid;
}

describe('auth domain events', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    // REFRESH_GRACE 0: the reuse below replays at once (the grace has its own suite, refresh-races).
    const env = { MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms', REFRESH_GRACE: '0' };
    t = await TestApp.start(env, [AuthEventsProbeModule], {
      override: (builder) => builder.overrideProvider(AuditService).useClass(FaultyAuditService),
    });
  });

  beforeEach(() => {
    seen.length = 0;
    FaultyAuditService.failing = null;
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  const post = (path: string, body?: unknown, token?: string) =>
    t.request(`${api}${path}`, { method: 'POST', body, token });
  const sessionCount = (userId: number) => t.dataSource.getRepository(SessionRow).countBy({ userId });

  it('publishes auth.login_succeeded with the session the password sign-in opened', async () => {
    const account = await signUp(t, capture);
    seen.length = 0;

    const session = await logIn(t, account);

    expect(seen).toEqual([
      {
        event: 'auth.login_succeeded',
        payload: { userId: account.id, sessionId: sessionIdOf(session), method: 'password' },
      },
    ]);
  });

  it('publishes auth.login_failed with its reason, and never a success, for every refusal', async () => {
    const account = await signUp(t, capture);
    const unverified = uniqueEmail('unverified');
    expect((await post('/auth/register', { email: unverified, password: PASSWORD })).status).toBe(202);
    const disabled = await signUp(t, capture);
    await t.dataSource.getRepository(User).update({ id: disabled.id }, { disabledAt: new Date() });
    seen.length = 0;

    const answers = [
      await post('/auth/login', { email: account.email, password: 'not the password at all' }),
      await post('/auth/login', { email: uniqueEmail('ghost'), password: 'not the password at all' }),
      await post('/auth/login', { email: unverified, password: PASSWORD }),
      await post('/auth/login', { email: disabled.email, password: disabled.password }),
    ];

    expect(answers.map((a) => `${a.status} ${a.body.code}`)).toEqual([
      '401 INVALID_CREDENTIALS',
      '401 INVALID_CREDENTIALS',
      '403 EMAIL_NOT_VERIFIED',
      '403 ACCOUNT_DISABLED',
    ]);
    const unverifiedId = (await t.dataSource.getRepository(User).findOneByOrFail({ email: unverified })).id;
    expect(seen).toEqual([
      {
        event: 'auth.login_failed',
        payload: { userId: account.id, reason: 'wrong_password', method: 'password' },
      },
      { event: 'auth.login_failed', payload: { userId: null, reason: 'unknown_email', method: 'password' } },
      {
        event: 'auth.login_failed',
        payload: { userId: unverifiedId, reason: 'email_not_verified', method: 'password' },
      },
      {
        event: 'auth.login_failed',
        payload: { userId: disabled.id, reason: 'disabled', method: 'password' },
      },
    ]);
    // Each event matches the audit row the same refusal wrote.
    const rows = await auditEvents(t, { event: 'auth.login_failed', userId: disabled.id });
    expect(rows.map((row) => row.metadata?.reason)).toEqual(['disabled']);
  });

  it('publishes nothing, and keeps no session, when the sign-in unit of work rolls back', async () => {
    const account = await signUp(t, capture);
    seen.length = 0;
    FaultyAuditService.failing = 'auth.login_succeeded';

    const failed = await post('/auth/login', { email: account.email, password: account.password });

    expect(failed.status).toBe(500);
    expect(seen).toEqual([]);
    // The session was inserted before the audit row failed; the rollback took it back.
    expect(await sessionCount(account.id)).toBe(0);
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id })).toEqual([]);

    FaultyAuditService.failing = null;
    await logIn(t, account);
    expect(seen.map((s) => s.event)).toEqual(['auth.login_succeeded']);
    expect(await sessionCount(account.id)).toBe(1);
  });

  it('publishes session.revoked for refresh reuse, revoke-one and logout, and not for a refused revoke', async () => {
    const account = await signUp(t, capture);
    const [reused, revoked, current] = [
      await logIn(t, account),
      await logIn(t, account),
      await logIn(t, account),
    ];
    const stranger = await newUser(t);
    seen.length = 0;

    await post('/auth/refresh', { refreshToken: reused.refreshToken });
    await post('/auth/refresh', { refreshToken: reused.refreshToken });
    await t.request(`${api}/auth/sessions/${sessionIdOf(revoked)}`, {
      method: 'DELETE',
      token: current.accessToken,
    });
    await t.request(`${api}/auth/sessions/${stranger.sessionId}`, {
      method: 'DELETE',
      token: current.accessToken,
    });
    await post('/auth/logout', undefined, current.accessToken);

    const revocation = (sessionIds: number[], reason: SessionRevokedEvent['reason']) => ({
      event: 'session.revoked',
      payload: { userId: account.id, sessionIds, reason },
    });
    expect(seen).toEqual([
      revocation([sessionIdOf(reused)], 'refresh_reused'),
      revocation([sessionIdOf(revoked)], 'revoked'),
      revocation([sessionIdOf(current)], 'logout'),
    ]);
  });

  it('publishes one session.revoked naming every session logout-all revoked', async () => {
    const account = await signUp(t, capture);
    const [first, second] = [await logIn(t, account), await logIn(t, account)];
    seen.length = 0;

    expect((await post('/auth/logout-all', undefined, second.accessToken)).status).toBe(204);

    expect(seen).toEqual([
      {
        event: 'session.revoked',
        payload: {
          userId: account.id,
          sessionIds: [sessionIdOf(first), sessionIdOf(second)],
          reason: 'logout_all',
        },
      },
    ]);
  });

  it('publishes session.revoked when an operator disables an account', async () => {
    const admin = await newUser(t, { role: 'admin' });
    const account = await signUp(t, capture);
    const [a, b] = [await logIn(t, account), await logIn(t, account)];
    seen.length = 0;

    const res = await t.request(`${api}/admin/users/${account.id}/disable`, {
      method: 'POST',
      token: admin.accessToken,
    });

    expect(res.status).toBe(204);
    expect(seen).toEqual([
      {
        event: 'session.revoked',
        payload: {
          userId: account.id,
          sessionIds: [sessionIdOf(a), sessionIdOf(b)],
          reason: 'account_disabled',
        },
      },
    ]);
  });
});
