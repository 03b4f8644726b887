import { ConfigService } from '@nestjs/config';
import type { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import { type Config, loadConfig } from '../config/config.js';
import type { UnitOfWork } from '../database/unit-of-work.js';
import type { DomainEvents } from '../events/domain-events.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { User } from '../users/user.entity.js';
import type { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import type { SessionsService, TokenPair } from './sessions.service.js';
import { SignInService } from './sign-in.service.js';
import { mfaInvalid } from './mfa/mfa.service.js';

const NOW = new Date('2026-03-04T05:06:07.000Z');
const META = { ip: '203.0.113.9', userAgent: 'spec', requestId: 'req-1' };
const TOKENS: TokenPair = {
  accessToken: 'jwt',
  refreshToken: 'refresh',
  tokenType: 'Bearer',
  expiresIn: 900,
};

class FixedClock extends Clock {
  override now(): Date {
    return new Date(NOW);
  }
}

/** The unit-of-work seam: runs the work, and says whether a write happens inside one. */
class FakeUnitOfWork {
  opened = 0;
  private depth = 0;

  get inside(): boolean {
    return this.depth > 0;
  }

  async withTransaction<T>(work: () => Promise<T>): Promise<T> {
    this.opened += this.depth === 0 ? 1 : 0;
    this.depth += 1;
    try {
      return await work();
    } finally {
      this.depth -= 1;
    }
  }
}

/** The hasher seam: "hash(x)" is the hash of x; `stale` makes every stored hash look old. */
class FakeHasher extends PasswordHasher {
  stale = false;
  readonly hashed: string[] = [];

  hash(password: string): Promise<string> {
    this.hashed.push(password);
    return Promise.resolve(`new-hash(${password})`);
  }

  verify(password: string, hash: string): Promise<boolean> {
    return Promise.resolve(hash === `hash(${password})`);
  }

  verifyNothing(): Promise<false> {
    return Promise.resolve(false);
  }

  needsRehash(): boolean {
    return this.stale;
  }
}

function account(overrides: Partial<User> = {}): User {
  return Object.assign(new User(), {
    id: 7,
    email: 'ada@example.test',
    username: null,
    passwordHash: 'hash(right password)',
    isVerified: true,
    role: 'user',
    disabledAt: null,
    lastLoginAt: null,
    ...overrides,
  });
}

describe(SignInService.name, () => {
  function setup(env: Record<string, string> = {}) {
    const uow = new FakeUnitOfWork();
    /** Every write and publication, in order, marked when it happened outside the unit of work. */
    const journal: string[] = [];
    const note = (entry: string) => journal.push(uow.inside ? entry : `${entry} (outside the unit of work)`);
    /** The password hash the account has now; a sign-in whose proof saw another one is stale. */
    const stored = { passwordHash: 'hash(right password)' };
    const users: jest.Mocked<Pick<UsersService, 'recordLogin' | 'isDisabled'>> = {
      recordLogin: jest.fn<Promise<boolean>, Parameters<UsersService['recordLogin']>>(
        (id, _at, checkedHash, rehashed) => {
          note(`users.recordLogin ${id}${rehashed ? ` rehashed ${rehashed}` : ''}`);
          return Promise.resolve(checkedHash === stored.passwordHash);
        },
      ),
      // What a refused stale sign-in reads to tell a disable from a changed credential: not disabled.
      isDisabled: jest.fn((_id: number) => Promise.resolve(false)),
    };
    const sessions: jest.Mocked<Pick<SessionsService, 'open'>> = {
      open: jest.fn<ReturnType<SessionsService['open']>, Parameters<SessionsService['open']>>((userId) => {
        note(`sessions.open ${userId}`);
        return Promise.resolve({ sessionId: 41, tokens: TOKENS });
      }),
    };
    const audit: jest.Mocked<Pick<AuditService, 'record'>> = {
      record: jest.fn((event: string) => Promise.resolve(void note(`audit ${event}`))),
    };
    const events: jest.Mocked<Pick<DomainEvents, 'publish'>> = {
      publish: jest.fn<void, Parameters<DomainEvents['publish']>>((name) => void note(`event ${name}`)),
    };
    const metrics: jest.Mocked<Pick<MetricsService, 'loginAttempt'>> = {
      loginAttempt: jest.fn((outcome) => void note(`metric ${outcome}`)),
    };
    const hasher = new FakeHasher();
    const config = loadConfig({ NODE_ENV: 'test', APP_PUBLIC_URL: 'https://gatehouse.example', ...env });
    const sut = new SignInService(
      uow as unknown as UnitOfWork,
      users as unknown as UsersService,
      sessions as unknown as SessionsService,
      hasher,
      audit as unknown as AuditService,
      events as unknown as DomainEvents,
      metrics as unknown as MetricsService,
      new FixedClock(),
      new ConfigService<Config, true>(config),
    );
    return { sut, uow, journal, users, stored, sessions, audit, events, metrics, hasher };
  }

  describe('complete', () => {
    it('should open the session, record the login, audit it and count it in one unit of work, then publish', async () => {
      const { sut, uow, journal, audit, events } = setup();

      await expect(sut.complete(account(), { method: 'password', meta: META })).resolves.toEqual({
        ...TOKENS,
        user: expect.objectContaining({ id: 7, lastLoginAt: NOW }) as unknown,
      });

      expect(uow.opened).toBe(1);
      expect(journal).toEqual([
        'users.recordLogin 7',
        'sessions.open 7',
        'audit auth.login_succeeded',
        'event auth.login_succeeded',
        'metric success',
      ]);
      expect(audit.record).toHaveBeenCalledWith('auth.login_succeeded', {
        userId: 7,
        meta: META,
        metadata: { sessionId: 41, method: 'password' },
      });
      expect(events.publish).toHaveBeenCalledWith('auth.login_succeeded', {
        userId: 7,
        sessionId: 41,
        method: 'password',
      });
    });

    it('should upgrade a hash made with an old cost, hashing before the unit of work opens', async () => {
      const { sut, journal, hasher, audit } = setup();
      hasher.stale = true;

      await expect(
        sut.complete(account(), { method: 'password', meta: META, password: 'right password' }),
      ).resolves.toMatchObject({ accessToken: 'jwt' });

      expect(hasher.hashed).toEqual(['right password']);
      expect(journal[0]).toBe('users.recordLogin 7 rehashed new-hash(right password)');
      expect(audit.record).toHaveBeenCalledWith('auth.login_succeeded', {
        userId: 7,
        meta: META,
        metadata: { sessionId: 41, method: 'password', rehashed: true },
      });
    });

    it('should not re-hash a current hash, nor any hash when the method had no password', async () => {
      const { sut, users, hasher } = setup();

      await expect(
        sut.complete(account(), { method: 'password', meta: META, password: 'right password' }),
      ).resolves.toMatchObject({ accessToken: 'jwt' });
      hasher.stale = true;
      await expect(sut.complete(account(), { method: 'password', meta: META })).resolves.toMatchObject({
        accessToken: 'jwt',
      });

      expect(hasher.hashed).toEqual([]);
      expect(users.recordLogin.mock.calls.map(([, , , rehashed]) => rehashed)).toEqual([null, null]);
    });

    it('should refuse, as credentials_changed, a proof checked against a password hash that changed since', async () => {
      const { sut, journal, stored, audit } = setup();
      stored.passwordHash = 'hash(newer password)';

      await expect(
        sut.complete(account(), { method: 'password', meta: META, password: 'right password' }),
      ).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS', status: 401 });
      await expect(sut.complete(account(), { method: 'totp', meta: META }, mfaInvalid)).rejects.toMatchObject(
        { code: 'MFA_INVALID', status: 401 },
      );

      expect(journal.filter((entry) => !entry.startsWith('users.recordLogin'))).toEqual([
        'audit auth.login_failed',
        'event auth.login_failed',
        'metric invalid_credentials',
        'audit auth.login_failed',
        'event auth.login_failed',
        'metric invalid_credentials',
      ]);
      expect(audit.record).toHaveBeenCalledWith('auth.login_failed', {
        userId: 7,
        meta: META,
        outcome: 'failure',
        metadata: { reason: 'credentials_changed', method: 'password' },
      });
    });

    it('should refuse a disabled account with 403 ACCOUNT_DISABLED through the refuse path, opening nothing', async () => {
      const { sut, journal, audit, events, sessions, users } = setup();

      const refused = sut.complete(account({ disabledAt: NOW, isVerified: false }), {
        method: 'password',
        meta: META,
      });

      await expect(refused).rejects.toMatchObject({ code: 'ACCOUNT_DISABLED', status: 403 });
      expect(journal).toEqual([
        'audit auth.login_failed',
        'event auth.login_failed',
        'metric account_disabled',
      ]);
      expect(audit.record).toHaveBeenCalledWith('auth.login_failed', {
        userId: 7,
        meta: META,
        outcome: 'failure',
        metadata: { reason: 'disabled', method: 'password' },
      });
      expect(events.publish).toHaveBeenCalledWith('auth.login_failed', {
        userId: 7,
        reason: 'disabled',
        method: 'password',
      });
      expect(sessions.open).not.toHaveBeenCalled();
      expect(users.recordLogin).not.toHaveBeenCalled();
    });

    it('should refuse an unverified account with 403 EMAIL_NOT_VERIFIED', async () => {
      const { sut, events, sessions } = setup();

      await expect(
        sut.complete(account({ isVerified: false }), { method: 'password', meta: META }),
      ).rejects.toMatchObject({ code: 'EMAIL_NOT_VERIFIED', status: 403 });

      expect(events.publish).toHaveBeenCalledWith('auth.login_failed', {
        userId: 7,
        reason: 'email_not_verified',
        method: 'password',
      });
      expect(sessions.open).not.toHaveBeenCalled();
    });

    it('should let an unverified account in when AUTH_REQUIRE_VERIFIED_EMAIL is false', async () => {
      const { sut, sessions } = setup({ AUTH_REQUIRE_VERIFIED_EMAIL: 'false' });

      await expect(
        sut.complete(account({ isVerified: false }), { method: 'password', meta: META }),
      ).resolves.toMatchObject({ accessToken: 'jwt' });

      expect(sessions.open).toHaveBeenCalledWith(7, META);
    });
  });

  describe('refuse', () => {
    it('should audit with the reason and details, count, publish without the details, then throw the answer', async () => {
      const { sut, journal, audit, events, metrics } = setup();
      const answer = new AppException(401, 'INVALID_CREDENTIALS', 'The email or password is incorrect.');

      await expect(
        sut.refuse(
          { userId: null, reason: 'unknown_email', method: 'password', meta: META, details: { failures: 2 } },
          answer,
        ),
      ).rejects.toBe(answer);

      expect(audit.record).toHaveBeenCalledWith('auth.login_failed', {
        userId: null,
        meta: META,
        outcome: 'failure',
        metadata: { reason: 'unknown_email', method: 'password', failures: 2 },
      });
      expect(events.publish).toHaveBeenCalledWith('auth.login_failed', {
        userId: null,
        reason: 'unknown_email',
        method: 'password',
      });
      expect(metrics.loginAttempt).toHaveBeenCalledWith('invalid_credentials');
      expect(journal).toHaveLength(3);
    });
  });

  describe('attempt', () => {
    it('should count a refusal for load as throttled, never as a failed sign-in, and pass it on', async () => {
      const { sut, metrics, audit } = setup();
      const busy = new AppException(503, 'AUTH_BUSY', 'Too many sign-ins at once; try again shortly.');

      await expect(sut.attempt(() => Promise.reject(busy))).rejects.toBe(busy);

      expect(metrics.loginAttempt.mock.calls).toEqual([['throttled']]);
      expect(audit.record).not.toHaveBeenCalled();
    });

    it('should count nothing for any other outcome, which its own step counts', async () => {
      const { sut, metrics } = setup();
      const refused = new AppException(401, 'MFA_INVALID', 'The code is not valid.');

      await expect(sut.attempt(() => Promise.resolve('signed in'))).resolves.toBe('signed in');
      await expect(sut.attempt(() => Promise.reject(refused))).rejects.toBe(refused);

      expect(metrics.loginAttempt).not.toHaveBeenCalled();
    });
  });
});
