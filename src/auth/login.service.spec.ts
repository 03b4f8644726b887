import { createHash } from 'node:crypto';
import { HttpStatus } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import { type Config, loadConfig } from '../config/config.js';
import type { UnitOfWork } from '../database/unit-of-work.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { User } from '../users/user.entity.js';
import type { UsersService } from '../users/users.service.js';
import { LoginService } from './login.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import type { SignedIn, SignInService } from './sign-in.service.js';

const NOW = new Date('2026-03-04T05:06:07.000Z');
const META = { ip: '203.0.113.9', userAgent: 'spec', requestId: 'req-1' };
const THRESHOLD = 3;
const LOCKOUT_MS = 60_000;

class FixedClock extends Clock {
  override now(): Date {
    return new Date(NOW);
  }
}

/** The hasher seam: "hash(x)" is the hash of x; counts the comparisons it was asked for. */
class FakeHasher extends PasswordHasher {
  readonly compared: string[] = [];
  busy = false;

  hash(password: string): Promise<string> {
    return Promise.resolve(`hash(${password})`);
  }

  verify(password: string, hash: string): Promise<boolean> {
    this.compare(`verify ${password}`);
    return Promise.resolve(hash === `hash(${password})`);
  }

  verifyNothing(password: string): Promise<false> {
    this.compare(`verifyNothing ${password}`);
    return Promise.resolve(false);
  }

  needsRehash(): boolean {
    return false;
  }

  private compare(what: string): void {
    if (this.busy) {
      throw new AppException(HttpStatus.SERVICE_UNAVAILABLE, 'AUTH_BUSY', 'Too many sign-ins at once.');
    }
    this.compared.push(what);
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
    failedLoginCount: 0,
    lockoutCount: 0,
    lockedUntil: null,
    disabledAt: null,
    lastLoginAt: null,
    ...overrides,
  });
}

describe(LoginService.name, () => {
  function setup(options: { user?: User | null; attempts?: number | null; unknownBlocked?: boolean } = {}) {
    const user = options.user === undefined ? account() : options.user;
    const users: jest.Mocked<
      Pick<UsersService, 'findByEmailWithHash' | 'reserveLoginAttempt' | 'clearFailedLogins' | 'lock'>
    > = {
      findByEmailWithHash: jest.fn<Promise<User | null>, [string]>().mockResolvedValue(user),
      reserveLoginAttempt: jest
        .fn<Promise<number | null>, [number, Date]>()
        .mockResolvedValue(options.attempts === undefined ? 1 : options.attempts),
      clearFailedLogins: jest.fn<Promise<void>, [number]>().mockResolvedValue(undefined),
      lock: jest.fn<Promise<boolean>, Parameters<UsersService['lock']>>().mockResolvedValue(true),
    };
    const signedIn: SignedIn = {
      accessToken: 'jwt',
      refreshToken: 'refresh',
      tokenType: 'Bearer',
      expiresIn: 900,
      user: account(),
    };
    const signIn: jest.Mocked<Pick<SignInService, 'barrier' | 'complete' | 'refuse'>> = {
      barrier: jest.fn<ReturnType<SignInService['barrier']>, Parameters<SignInService['barrier']>>(
        () => null,
      ),
      complete: jest
        .fn<Promise<SignedIn>, Parameters<SignInService['complete']>>()
        .mockResolvedValue(signedIn),
      // The real refuse records the refusal, then throws the answer it is given.
      refuse: jest.fn<Promise<never>, Parameters<SignInService['refuse']>>((_refusal, answer) =>
        Promise.reject(answer),
      ),
    };
    const audit: jest.Mocked<Pick<AuditService, 'record'>> = {
      record: jest.fn<Promise<void>, Parameters<AuditService['record']>>().mockResolvedValue(undefined),
    };
    const metrics: jest.Mocked<Pick<MetricsService, 'loginAttempt'>> = {
      loginAttempt: jest.fn<void, Parameters<MetricsService['loginAttempt']>>(),
    };
    const throttles: jest.Mocked<ThrottlerStorage> = {
      increment: jest.fn<
        ReturnType<ThrottlerStorage['increment']>,
        Parameters<ThrottlerStorage['increment']>
      >(() =>
        Promise.resolve({
          totalHits: 1,
          timeToExpire: 60,
          isBlocked: options.unknownBlocked ?? false,
          timeToBlockExpire: options.unknownBlocked ? 42 : 0,
        }),
      ),
    };
    const uow = { withTransaction: <T>(work: () => Promise<T>) => work() };
    const hasher = new FakeHasher();
    const config = loadConfig({
      NODE_ENV: 'test',
      APP_PUBLIC_URL: 'https://gatehouse.example',
      AUTH_LOCKOUT_THRESHOLD: String(THRESHOLD),
      AUTH_LOCKOUT_DURATION: `${LOCKOUT_MS}ms`,
    });
    const sut = new LoginService(
      uow as unknown as UnitOfWork,
      users as unknown as UsersService,
      hasher,
      signIn as unknown as SignInService,
      audit as unknown as AuditService,
      new FixedClock(),
      metrics as unknown as MetricsService,
      throttles,
      new ConfigService<Config, true>(config),
    );
    return { sut, users, signIn, audit, metrics, throttles, hasher, signedIn };
  }

  it('should still spend one comparison on an unknown email, then refuse it like a wrong password', async () => {
    const { sut, hasher, signIn, throttles } = setup({ user: null });

    await expect(sut.login('ghost@example.test', 'a guess', META)).rejects.toMatchObject({
      status: 401,
      code: 'INVALID_CREDENTIALS',
    });

    expect(hasher.compared).toEqual(['verifyNothing a guess']);
    expect(signIn.refuse).toHaveBeenCalledTimes(1);
    expect(signIn.refuse.mock.calls[0][0]).toEqual({
      userId: null,
      reason: 'unknown_email',
      method: 'password',
      meta: META,
    });
    const key = `login-unknown:${createHash('sha256').update('ghost@example.test').digest('hex')}`;
    expect(throttles.increment.mock.calls).toEqual([[key, LOCKOUT_MS, THRESHOLD, LOCKOUT_MS, 'lockout']]);
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should lock an unknown email past the threshold with the same 429 a known one gets', async () => {
    const { sut, signIn } = setup({ user: null, unknownBlocked: true });

    const refused = sut.login('ghost@example.test', 'a guess', META);

    await expect(refused).rejects.toMatchObject({ status: 429, code: 'ACCOUNT_LOCKED' });
    await expect(refused).rejects.toHaveProperty('headers', { 'Retry-After': '42' });
    expect(signIn.refuse.mock.calls[0][0]).toMatchObject({ userId: null, reason: 'locked' });
  });

  it('should refuse a wrong password through the refuse path, with the failure count', async () => {
    const { sut, hasher, signIn, users } = setup({ attempts: 2 });

    await expect(sut.login('ada@example.test', 'wrong password', META)).rejects.toMatchObject({
      status: 401,
      code: 'INVALID_CREDENTIALS',
    });

    expect(hasher.compared).toEqual(['verify wrong password']);
    expect(signIn.refuse.mock.calls[0][0]).toEqual({
      userId: 7,
      reason: 'wrong_password',
      method: 'password',
      meta: META,
      details: { failures: 2 },
    });
    expect(users.lock).not.toHaveBeenCalled();
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should lock the account on the wrong password that reaches the threshold, and audit the lock', async () => {
    const { sut, users, audit, signIn } = setup({ attempts: THRESHOLD });

    await expect(sut.login('ada@example.test', 'wrong password', META)).rejects.toMatchObject({
      status: 401,
    });

    const until = new Date(NOW.getTime() + LOCKOUT_MS);
    expect(users.lock).toHaveBeenCalledWith(7, until, NOW);
    expect(audit.record).toHaveBeenCalledWith('auth.locked', {
      userId: 7,
      meta: META,
      outcome: 'failure',
      metadata: { until: until.toISOString(), lockouts: 1 },
    });
    expect(signIn.refuse.mock.calls[0][0]).toMatchObject({ reason: 'wrong_password' });
  });

  it('should check no password while the account is locked, answering 429 with Retry-After', async () => {
    const lockedUntil = new Date(NOW.getTime() + 90_000);
    const { sut, hasher, signIn, users } = setup({ user: account({ lockedUntil }), attempts: null });

    const refused = sut.login('ada@example.test', 'right password', META);

    await expect(refused).rejects.toMatchObject({ status: 429, code: 'ACCOUNT_LOCKED' });
    await expect(refused).rejects.toHaveProperty('headers', { 'Retry-After': '90' });
    expect(hasher.compared).toEqual(['verifyNothing right password']);
    expect(users.lock).not.toHaveBeenCalled();
    expect(signIn.refuse.mock.calls[0][0]).toMatchObject({ userId: 7, reason: 'locked' });
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should hand a right password to the sign-in pipeline, with the password for a re-hash', async () => {
    const { sut, signIn, users, signedIn } = setup();

    await expect(sut.login('ada@example.test', 'right password', META)).resolves.toBe(signedIn);

    expect(signIn.complete).toHaveBeenCalledWith(expect.objectContaining({ id: 7 }), {
      method: 'password',
      meta: META,
      password: 'right password',
    });
    expect(users.clearFailedLogins).not.toHaveBeenCalled();
    expect(signIn.refuse).not.toHaveBeenCalled();
  });

  it('should not count a right password toward a lockout when the pipeline will refuse the account', async () => {
    const { sut, signIn, users } = setup();
    signIn.barrier.mockReturnValue('email_not_verified');

    await expect(sut.login('ada@example.test', 'right password', META)).resolves.toBeDefined();

    expect(users.clearFailedLogins).toHaveBeenCalledWith(7);
    expect(signIn.complete).toHaveBeenCalledTimes(1);
  });

  it('should count a full hashing queue as throttled, the one outcome the pipeline never sees', async () => {
    const { sut, hasher, metrics, signIn } = setup();
    hasher.busy = true;

    await expect(sut.login('ada@example.test', 'right password', META)).rejects.toMatchObject({
      status: 503,
      code: 'AUTH_BUSY',
    });

    expect(metrics.loginAttempt).toHaveBeenCalledWith('throttled');
    expect(signIn.refuse).not.toHaveBeenCalled();
  });
});
