import { HttpStatus } from '@nestjs/common';
import type { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import type { FailureRecorded, LoginLockout } from '../users/login-lockout.service.js';
import { User } from '../users/user.entity.js';
import type { UsersService } from '../users/users.service.js';
import { LoginService } from './login.service.js';
import type { MfaLoginService } from './mfa/mfa-login.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import type { SignedIn, SignInService } from './sign-in.service.js';

const NOW = new Date('2026-03-04T05:06:07.000Z');
const META = { ip: '203.0.113.9', userAgent: 'spec', requestId: 'req-1' };
const UNTIL = new Date(NOW.getTime() + 90_000);

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
    disabledAt: null,
    lastLoginAt: null,
    ...overrides,
  });
}

describe(LoginService.name, () => {
  function setup(
    options: { user?: User | null; lockedUntil?: Date | null; failure?: Partial<FailureRecorded> } = {},
  ) {
    const user = options.user === undefined ? account() : options.user;
    const users: jest.Mocked<Pick<UsersService, 'findByEmailWithHash'>> = {
      findByEmailWithHash: jest.fn<Promise<User | null>, [string]>().mockResolvedValue(user),
    };
    const lockout: jest.Mocked<Pick<LoginLockout, 'lockedUntil' | 'recordFailure' | 'recordSuccess'>> = {
      lockedUntil: jest
        .fn<Promise<Date | null>, Parameters<LoginLockout['lockedUntil']>>()
        .mockResolvedValue(options.lockedUntil ?? null),
      recordFailure: jest
        .fn<Promise<FailureRecorded>, Parameters<LoginLockout['recordFailure']>>()
        .mockResolvedValue({ lockedUntil: null, lockedNow: [], failures: 1, ...options.failure }),
      recordSuccess: jest
        .fn<Promise<void>, Parameters<LoginLockout['recordSuccess']>>()
        .mockResolvedValue(undefined),
    };
    const signedIn: SignedIn = {
      accessToken: 'jwt',
      refreshToken: 'refresh',
      tokenType: 'Bearer',
      expiresIn: 900,
      user: account(),
    };
    const signIn: jest.Mocked<Pick<SignInService, 'complete' | 'refuse'>> = {
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
    const hasher = new FakeHasher();
    const sut = new LoginService(
      users as unknown as UsersService,
      hasher,
      signIn as unknown as SignInService,
      lockout as unknown as LoginLockout,
      audit as unknown as AuditService,
      new FixedClock(),
      metrics as unknown as MetricsService,
      // Accounts here have no TOTP: the second step is MfaLoginService's, tested end to end.
      {} as MfaLoginService,
    );
    return { sut, users, lockout, signIn, audit, metrics, hasher, signedIn };
  }

  it('should spend one comparison on an unknown email and count it like a wrong password', async () => {
    const { sut, hasher, signIn, lockout } = setup({ user: null });

    await expect(sut.login('ghost@example.test', 'a guess', META)).rejects.toMatchObject({
      status: 401,
      code: 'INVALID_CREDENTIALS',
    });

    expect(hasher.compared).toEqual(['verifyNothing a guess']);
    expect(lockout.recordFailure).toHaveBeenCalledWith('ghost@example.test', '203.0.113.9', NOW);
    expect(signIn.refuse.mock.calls[0][0]).toEqual({
      userId: null,
      reason: 'unknown_email',
      method: 'password',
      meta: META,
      details: { failures: 1 },
    });
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should count failures per client, an IPv6 client by its /64', async () => {
    const { sut, lockout } = setup();

    await expect(
      sut.login('ada@example.test', 'wrong password', { ...META, ip: '2001:db8:5:6::42' }),
    ).rejects.toMatchObject({ status: 401 });

    expect(lockout.lockedUntil).toHaveBeenCalledWith('ada@example.test', '2001:db8:5:6::/64', NOW);
    expect(lockout.recordFailure).toHaveBeenCalledWith('ada@example.test', '2001:db8:5:6::/64', NOW);
  });

  it('should answer 401 on the failure that locks, and audit each lock it set', async () => {
    const { sut, audit } = setup({
      failure: { lockedUntil: UNTIL, lockedNow: ['client'], failures: 5 },
    });

    await expect(sut.login('ada@example.test', 'wrong password', META)).rejects.toMatchObject({
      status: 401,
    });

    expect(audit.record).toHaveBeenCalledWith('auth.locked', {
      userId: 7,
      meta: META,
      outcome: 'failure',
      metadata: { scope: 'client', until: UNTIL.toISOString(), failures: 5 },
    });
  });

  it('should answer 429 to a wrong guess that raced past a lock another request set', async () => {
    const { sut, audit } = setup({ failure: { lockedUntil: UNTIL, lockedNow: [], failures: 6 } });

    const refused = sut.login('ada@example.test', 'wrong password', META);

    await expect(refused).rejects.toMatchObject({ status: 429, code: 'ACCOUNT_LOCKED' });
    await expect(refused).rejects.toHaveProperty('headers', { 'Retry-After': '90' });
    expect(audit.record).not.toHaveBeenCalled();
  });

  it('should check no password while locked, answering 429 with Retry-After', async () => {
    const { sut, hasher, signIn, lockout } = setup({ lockedUntil: UNTIL });

    const refused = sut.login('ada@example.test', 'right password', META);

    await expect(refused).rejects.toMatchObject({ status: 429, code: 'ACCOUNT_LOCKED' });
    await expect(refused).rejects.toHaveProperty('headers', { 'Retry-After': '90' });
    expect(hasher.compared).toEqual(['verifyNothing right password']);
    expect(lockout.recordFailure).not.toHaveBeenCalled();
    expect(signIn.refuse.mock.calls[0][0]).toMatchObject({ userId: 7, reason: 'locked' });
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should hand a right password to the sign-in pipeline and count nothing against it', async () => {
    const { sut, signIn, lockout, signedIn } = setup();

    await expect(sut.login('ada@example.test', 'right password', META)).resolves.toBe(signedIn);

    expect(signIn.complete).toHaveBeenCalledWith(expect.objectContaining({ id: 7 }), {
      method: 'password',
      meta: META,
      password: 'right password',
    });
    expect(lockout.recordSuccess).toHaveBeenCalledWith('ada@example.test', '203.0.113.9');
    expect(lockout.recordFailure).not.toHaveBeenCalled();
    expect(signIn.refuse).not.toHaveBeenCalled();
  });

  it('should count a full hashing queue as throttled, never as a failed sign-in', async () => {
    const { sut, hasher, metrics, signIn, lockout } = setup();
    hasher.busy = true;

    await expect(sut.login('ada@example.test', 'right password', META)).rejects.toMatchObject({
      status: 503,
      code: 'AUTH_BUSY',
    });

    expect(metrics.loginAttempt).toHaveBeenCalledWith('throttled');
    expect(lockout.recordFailure).not.toHaveBeenCalled();
    expect(signIn.refuse).not.toHaveBeenCalled();
  });
});
