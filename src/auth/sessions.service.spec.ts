import { QueryFailedError } from 'typeorm';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import type { AuditInput, AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Clock } from '../common/clock.js';
import type { Page } from '../common/pagination.js';
import { type Config, loadConfig } from '../config/config.js';
import type { UnitOfWork } from '../database/unit-of-work.js';
import type { DomainEventMap, DomainEvents } from '../events/domain-events.js';
import { hashToken } from '../tokens/tokens.service.js';
import { AccessTokensService } from './access-tokens.service.js';
import { Session, type SessionRevokedReason } from './session.entity.js';
import type { NewSession, SessionsRepository } from './sessions.repository.js';
import { SessionsService } from './sessions.service.js';

const NOW = new Date('2026-03-04T05:06:07.000Z');
const DAY_MS = 24 * 60 * 60 * 1000;
const META = { ip: '203.0.113.9', userAgent: 'spec', requestId: 'req-1' };

/** Stands still at NOW until a test moves it on. */
class FixedClock extends Clock {
  at = NOW.getTime();

  override now(): Date {
    return new Date(this.at);
  }
}

/** The repository seam: the sessions table and its refresh-token history, in memory, with the real rules. */
class InMemorySessions implements Omit<SessionsRepository, 'findLiveCaller' | 'purgeEndedBefore'> {
  readonly rows: Session[] = [];
  /** Rotated-out refresh-token hash → its session's id and when it was rotated out. */
  readonly history = new Map<string, { sessionId: number; rotatedAt: Date }>();

  open(session: NewSession): Promise<number> {
    const id = this.rows.length + 1;
    this.rows.push(Object.assign(new Session(), { ...session, id, revokedAt: null, revokedReason: null }));
    return Promise.resolve(id);
  }

  findByRefreshHash(hash: string): Promise<Session | null> {
    return Promise.resolve(this.rows.find((row) => row.refreshTokenHash === hash) ?? null);
  }

  findRotatedOut(hash: string): Promise<{ session: Session; rotatedAt: Date } | null> {
    const entry = this.history.get(hash);
    const session = this.rows.find((row) => row.id === entry?.sessionId);
    return Promise.resolve(entry && session ? { session: { ...session }, rotatedAt: entry.rotatedAt } : null);
  }

  rotate(sessionId: number, fromHash: string, toHash: string, now: Date): Promise<boolean> {
    const row = this.rows.find(
      (r) => r.id === sessionId && r.refreshTokenHash === fromHash && !r.revokedAt && r.expiresAt > now,
    );
    if (!row) {
      return Promise.resolve(false);
    }
    Object.assign(row, { refreshTokenHash: toHash, lastUsedAt: now });
    this.history.set(fromHash, { sessionId, rotatedAt: now });
    return Promise.resolve(true);
  }

  revoke(userId: number, sessionId: number, reason: SessionRevokedReason, now: Date): Promise<boolean> {
    const row = this.unrevoked(userId).find((r) => r.id === sessionId);
    if (row) {
      Object.assign(row, { revokedAt: now, revokedReason: reason });
    }
    return Promise.resolve(row !== undefined);
  }

  lockUnrevoked(userId: number, options: { except?: number } = {}): Promise<number[]> {
    return Promise.resolve(this.unrevoked(userId, options.except).map((row) => row.id));
  }

  revokeAll(
    userId: number,
    reason: SessionRevokedReason,
    now: Date,
    options: { except?: number } = {},
  ): Promise<number> {
    const rows = this.unrevoked(userId, options.except);
    rows.forEach((row) => Object.assign(row, { revokedAt: now, revokedReason: reason }));
    return Promise.resolve(rows.length);
  }

  listLive(userId: number, now: Date): Promise<Page<Session>> {
    const items = this.unrevoked(userId).filter((row) => row.expiresAt > now);
    return Promise.resolve({ items: items.reverse(), nextCursor: null });
  }

  unrevokedBeyond(userId: number, keep: number): Promise<number[]> {
    return Promise.resolve(
      this.unrevoked(userId)
        .map((row) => row.id)
        .reverse()
        .slice(keep)
        .reverse(),
    );
  }

  revokeMany(userId: number, sessionIds: number[], reason: SessionRevokedReason, now: Date): Promise<number> {
    const rows = this.unrevoked(userId).filter((row) => sessionIds.includes(row.id));
    rows.forEach((row) => Object.assign(row, { revokedAt: now, revokedReason: reason }));
    return Promise.resolve(rows.length);
  }

  private unrevoked(userId: number, except?: number): Session[] {
    return this.rows.filter((row) => row.userId === userId && !row.revokedAt && row.id !== except);
  }
}

class FakeAudit implements Pick<AuditService, 'record'> {
  readonly rows: { event: string; input: AuditInput }[] = [];

  record(event: string, input: AuditInput = {}): Promise<void> {
    this.rows.push({ event, input });
    return Promise.resolve();
  }
}

class FakeEvents implements Pick<DomainEvents, 'publish'> {
  readonly published: { name: string; payload: unknown }[] = [];

  publish<K extends keyof DomainEventMap>(name: K, payload: DomainEventMap[K]): void {
    this.published.push({ name, payload });
  }
}

describe(SessionsService.name, () => {
  function setup() {
    const config = new ConfigService<Config, true>(
      loadConfig({
        NODE_ENV: 'test',
        APP_PUBLIC_URL: 'https://gatehouse.example',
        REFRESH_TTL: '30d',
        REFRESH_GRACE: '15s',
      }),
    );
    const clock = new FixedClock();
    const repository = new InMemorySessions();
    const audit = new FakeAudit();
    const events = new FakeEvents();
    const uow = { withTransaction: <T>(work: () => Promise<T>) => work() };
    const sut = new SessionsService(
      uow as unknown as UnitOfWork,
      repository as unknown as SessionsRepository,
      new AccessTokensService(new JwtService(), config),
      audit as unknown as AuditService,
      events as unknown as DomainEvents,
      clock,
      config,
    );
    return { sut, repository, audit, events, clock };
  }

  const caller = (userId: number, sessionId: number): AuthUser => ({
    id: userId,
    sessionId,
    email: 'ada@example.test',
    role: 'user',
    isVerified: true,
  });

  it('should open a session that stores only the hash of its refresh token, with an absolute expiry', async () => {
    const { sut, repository } = setup();

    const { sessionId, tokens } = await sut.open(7, META);

    expect(tokens).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(tokens.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(repository.rows).toEqual([
      expect.objectContaining({
        id: sessionId,
        userId: 7,
        refreshTokenHash: hashToken(tokens.refreshToken),
        expiresAt: new Date(NOW.getTime() + 30 * DAY_MS),
        ip: META.ip,
        userAgent: META.userAgent,
      }),
    ]);
  });

  it('should rotate: a new pair, the old token filed as rotated out, the refresh audited', async () => {
    const { sut, repository, audit, events } = setup();
    const { sessionId, tokens } = await sut.open(7, META);

    const next = await sut.refresh(tokens.refreshToken, META);

    expect(next.refreshToken).not.toBe(tokens.refreshToken);
    expect(repository.rows[0].refreshTokenHash).toBe(hashToken(next.refreshToken));
    expect(repository.history.get(hashToken(tokens.refreshToken))).toEqual({ sessionId, rotatedAt: NOW });
    expect(audit.rows).toEqual([
      { event: 'auth.refreshed', input: { userId: 7, meta: META, metadata: { sessionId } } },
    ]);
    expect(events.published).toEqual([]);
    await expect(sut.refresh(next.refreshToken, META)).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  it('should take a rotation InnoDB rolled back as a deadlock victim again, audited once', async () => {
    const { sut, repository, audit } = setup();
    const { sessionId, tokens } = await sut.open(7, META);
    const rotate = repository.rotate.bind(repository);
    let deadlocks = 1;
    repository.rotate = (...args) => {
      if (deadlocks-- > 0) {
        const driverError = Object.assign(new Error('Deadlock found when trying to get lock'), {
          code: 'ER_LOCK_DEADLOCK',
          errno: 1213,
        });
        return Promise.reject(new QueryFailedError('UPDATE sessions …', [], driverError));
      }
      return rotate(...args);
    };

    const next = await sut.refresh(tokens.refreshToken, META);

    expect(repository.rows[0].refreshTokenHash).toBe(hashToken(next.refreshToken));
    expect(audit.rows).toEqual([
      { event: 'auth.refreshed', input: { userId: 7, meta: META, metadata: { sessionId } } },
    ]);
  });

  it('should hand a replay within the grace the pair the winner got, revoking nothing', async () => {
    const { sut, repository, audit, events, clock } = setup();
    const { sessionId, tokens } = await sut.open(7, META);
    const winner = await sut.refresh(tokens.refreshToken, META);
    clock.at += 14_999;

    const loser = await sut.refresh(tokens.refreshToken, META);

    expect(loser.refreshToken).toBe(winner.refreshToken);
    expect(loser.accessToken).toEqual(expect.any(String));
    expect(repository.rows[0]).toMatchObject({
      revokedAt: null,
      refreshTokenHash: hashToken(winner.refreshToken),
    });
    expect(audit.rows.map((row) => row.event)).toEqual(['auth.refreshed', 'auth.refresh_replayed']);
    expect(audit.rows[1].input).toEqual({ userId: 7, meta: META, metadata: { sessionId } });
    expect(events.published).toEqual([]);
    // Either tab moves the one session along.
    await expect(sut.refresh(loser.refreshToken, META)).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  it('should catch a replay within the grace up with a session rotated twice since', async () => {
    const { sut, repository, audit } = setup();
    const { tokens } = await sut.open(7, META);
    const second = await sut.refresh(tokens.refreshToken, META);
    const third = await sut.refresh(second.refreshToken, META);

    await expect(sut.refresh(tokens.refreshToken, META)).resolves.toMatchObject({
      refreshToken: third.refreshToken,
    });

    expect(repository.rows[0].revokedAt).toBeNull();
    expect(audit.rows.at(-1)?.event).toBe('auth.refresh_replayed');
  });

  it('should never store a raw refresh token, in the session or its history', async () => {
    const { sut, repository } = setup();
    const { tokens } = await sut.open(7, META);
    const next = await sut.refresh(tokens.refreshToken, META);
    await sut.refresh(tokens.refreshToken, META);

    const stored = JSON.stringify([repository.rows, [...repository.history.keys()]]);
    expect(stored).not.toContain(tokens.refreshToken);
    expect(stored).not.toContain(next.refreshToken);
  });

  it('should revoke the session, audit the reuse and publish session.revoked when a rotated-out token comes back after the grace', async () => {
    const { sut, repository, audit, events, clock } = setup();
    const { sessionId, tokens } = await sut.open(7, META);
    const next = await sut.refresh(tokens.refreshToken, META);
    clock.at += 15_000;

    await expect(sut.refresh(tokens.refreshToken, META)).rejects.toMatchObject({
      status: 401,
      code: 'REFRESH_INVALID',
    });

    expect(repository.rows[0]).toMatchObject({
      revokedAt: new Date(clock.at),
      revokedReason: 'refresh_reused',
    });
    expect(audit.rows.at(-1)).toEqual({
      event: 'auth.refresh_reused',
      input: { userId: 7, meta: META, outcome: 'failure', metadata: { sessionId } },
    });
    expect(events.published).toEqual([
      { name: 'session.revoked', payload: { userId: 7, sessionIds: [sessionId], reason: 'refresh_reused' } },
    ]);
    // The whole session is dead: the newest token too.
    await expect(sut.refresh(next.refreshToken, META)).rejects.toMatchObject({ code: 'REFRESH_INVALID' });
    expect(events.published).toHaveLength(1);
  });

  it('should refuse a malformed refresh token without looking it up', async () => {
    const { sut, repository } = setup();
    const findByRefreshHash = jest.spyOn(repository, 'findByRefreshHash');

    await expect(sut.refresh('not a token', META)).rejects.toMatchObject({ code: 'REFRESH_INVALID' });

    expect(findByRefreshHash).not.toHaveBeenCalled();
  });

  it('should revoke every other session with revokeAll, naming them in one event', async () => {
    const { sut, repository, events } = setup();
    const kept = (await sut.open(7, META)).sessionId;
    const a = (await sut.open(7, META)).sessionId;
    const b = (await sut.open(7, META)).sessionId;
    const someoneElses = (await sut.open(8, META)).sessionId;

    await expect(sut.revokeAll(7, 'password_changed', { except: kept })).resolves.toBe(2);
    await expect(sut.revokeAll(7, 'password_changed', { except: kept })).resolves.toBe(0);

    expect(repository.rows.filter((row) => row.revokedAt).map((row) => row.id)).toEqual([a, b]);
    expect(repository.rows.find((row) => row.id === someoneElses)?.revokedAt).toBeNull();
    expect(events.published).toEqual([
      { name: 'session.revoked', payload: { userId: 7, sessionIds: [a, b], reason: 'password_changed' } },
    ]);
  });

  it('should answer 404 for someone else’s session, revoking, auditing and publishing nothing', async () => {
    const { sut, repository, audit, events } = setup();
    const mine = (await sut.open(7, META)).sessionId;
    const theirs = (await sut.open(8, META)).sessionId;

    await expect(sut.revokeOne(caller(7, mine), theirs, META)).rejects.toMatchObject({
      status: 404,
      code: 'SESSION_NOT_FOUND',
    });

    expect(repository.rows.every((row) => row.revokedAt === null)).toBe(true);
    expect(audit.rows).toEqual([]);
    expect(events.published).toEqual([]);
  });

  it('should log out this session only, audited and published', async () => {
    const { sut, repository, audit, events } = setup();
    const current = (await sut.open(7, META)).sessionId;
    const other = (await sut.open(7, META)).sessionId;

    await expect(sut.logout(caller(7, current), META)).resolves.toBeUndefined();

    expect(repository.rows.map((row) => [row.id, row.revokedReason])).toEqual([
      [current, 'logout'],
      [other, null],
    ]);
    expect(audit.rows).toEqual([
      { event: 'auth.logout', input: { userId: 7, meta: META, metadata: { sessionId: current } } },
    ]);
    expect(events.published).toEqual([
      { name: 'session.revoked', payload: { userId: 7, sessionIds: [current], reason: 'logout' } },
    ]);
  });
});
