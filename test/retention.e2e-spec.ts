import { SchedulerRegistry } from '@nestjs/schedule';
import { AuditRetentionService } from '../src/audit/audit-retention.service.js';
import { RefreshTokenHistory } from '../src/auth/refresh-token-history.entity.js';
import { Session } from '../src/auth/session.entity.js';
import { SessionsRetention } from '../src/auth/sessions-retention.service.js';
import { LoginFailure } from '../src/users/login-failure.entity.js';
import { LoginLockout } from '../src/users/login-lockout.service.js';
import { OutboxMessage, type OutboxStatus } from '../src/mail/outbox-message.entity.js';
import { OutboxRetention } from '../src/mail/outbox-retention.service.js';
import { TokensService } from '../src/tokens/tokens.service.js';
import { UnverifiedAccountsRetention } from '../src/users/unverified-retention.service.js';
import { newSession, newUser } from './support/factories.js';
import { TestApp } from './support/test-app.js';

const DAY = 24 * 60 * 60 * 1000;
const ago = (ms: number) => new Date(Date.now() - ms);

/** Tables that grow with use are bounded: ended sessions and finished outbox rows are purged. */
describe('retention', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ MAIL_OUTBOX_RETENTION: '7d' });
  });

  afterAll(async () => {
    await t.close();
  });

  it('deletes sessions that ended over a day ago, with their refresh history, and keeps the rest', async () => {
    const user = await newUser(t);
    const sessions = t.dataSource.getRepository(Session);
    const [expiredLongAgo, revokedLongAgo, revokedToday] = [
      await newSession(t, user.id),
      await newSession(t, user.id),
      await newSession(t, user.id),
    ];
    await sessions.update({ id: expiredLongAgo }, { expiresAt: ago(3 * DAY) });
    await sessions.update({ id: revokedLongAgo }, { revokedAt: ago(2 * DAY), revokedReason: 'logout' });
    await sessions.update({ id: revokedToday }, { revokedAt: ago(1000), revokedReason: 'logout' });
    await t.dataSource
      .getRepository(RefreshTokenHistory)
      .insert({ tokenHash: 'a'.repeat(64), sessionId: revokedLongAgo, rotatedAt: ago(2 * DAY) });

    expect(await t.app.get(SessionsRetention).purgeEnded()).toBe(2);
    const left = (await sessions.findBy({ userId: user.id })).map((s) => s.id).sort();
    expect(left).toEqual([user.sessionId, revokedToday].sort());
    expect(await t.dataSource.getRepository(RefreshTokenHistory).countBy({ sessionId: revokedLongAgo })).toBe(
      0,
    );
  });

  it('deletes sent and dead outbox rows past MAIL_OUTBOX_RETENTION and never a pending one', async () => {
    const outbox = t.dataSource.getRepository(OutboxMessage);
    const row = (status: OutboxStatus, createdAt: Date) => ({
      template: 'password-changed',
      recipient: `${status}-${createdAt.getTime()}@example.test`,
      payload: '{"v":1,"erased":true}',
      status,
      nextAttemptAt: createdAt,
      createdAt,
    });
    await outbox.insert([
      row('sent', ago(8 * DAY)),
      row('dead', ago(8 * DAY)),
      row('pending', ago(8 * DAY)),
      row('sent', ago(DAY)),
    ]);

    expect(await t.app.get(OutboxRetention).purgeFinished()).toBe(2);
    const left = (await outbox.find())
      .map((m) => `${m.status}:${Math.round((Date.now() - m.createdAt.getTime()) / DAY)}`)
      .sort();
    expect(left).toEqual(['pending:8', 'sent:1']);
  });

  it('forgets login failure counters idle for a day, never a lock still in force', async () => {
    const failures = t.dataSource.getRepository(LoginFailure);
    const row = (emailHash: string, updatedAt: Date, lockedUntil: Date | null = null) => ({
      emailHash,
      client: '*',
      failures: 3,
      lockedUntil,
      updatedAt,
    });
    await failures.insert([
      row('a'.repeat(64), ago(2 * DAY)),
      row('b'.repeat(64), ago(DAY / 2)),
      row('c'.repeat(64), ago(2 * DAY), new Date(Date.now() + DAY)),
    ]);
    expect(await t.app.get(LoginLockout).purgeIdle()).toBe(1);
    expect((await failures.find()).map((f) => f.emailHash[0]).sort()).toEqual(['b', 'c']);
  });

  it('runs the purges on their configured intervals and stops every one of them on app.close()', async () => {
    const fast = await TestApp.start({ TOKEN_PURGE_INTERVAL: '50ms', AUDIT_PURGE_INTERVAL: '50ms' });
    const registry = fast.app.get(SchedulerRegistry);
    const runs = [
      jest.spyOn(fast.app.get(TokensService), 'purgeExpired'),
      jest.spyOn(fast.app.get(SessionsRetention), 'purgeEnded'),
      jest.spyOn(fast.app.get(AuditRetentionService), 'purgeExpired'),
      jest.spyOn(fast.app.get(UnverifiedAccountsRetention), 'purgeExpired'),
      jest.spyOn(fast.app.get(LoginLockout), 'purgeIdle'),
    ];
    expect(registry.getIntervals().sort()).toEqual([
      'audit-retention',
      'login-failures-retention',
      'mail-budget-retention',
      'outbox-retention',
      'sessions-retention',
      'tokens-purge',
      'unverified-accounts-retention',
    ]);
    const deadline = Date.now() + 10_000;
    while (runs.some((run) => run.mock.calls.length < 2) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(runs.map((run) => run.mock.calls.length >= 2)).toEqual(runs.map(() => true));

    await fast.close();
    const countsAtClose = runs.map((run) => run.mock.calls.length);
    expect(registry.getIntervals()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(runs.map((run) => run.mock.calls.length)).toEqual(countsAtClose);
  });
});
