import { HttpStatus } from '@nestjs/common';
import type { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type {
  AdmittedCheck,
  Admission,
  FailureRecorded,
  LoginLockout,
} from '../users/login-lockout.service.js';
import { User } from '../users/user.entity.js';
import type { UsersService } from '../users/users.service.js';
import { CredentialGate } from './credential-gate.service.js';
import { LoginService } from './login.service.js';
import type { MfaChallenge, MfaLoginService } from './mfa/mfa-login.service.js';
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
    options: { user?: User | null; admission?: Admission; failure?: Partial<FailureRecorded> } = {},
  ) {
    const user = options.user === undefined ? account() : options.user;
    const users: jest.Mocked<Pick<UsersService, 'findByEmailWithHash'>> = {
      findByEmailWithHash: jest.fn<Promise<User | null>, [string]>().mockResolvedValue(user),
    };
    const admitted: AdmittedCheck = { emailHash: 'k', client: 'c', settled: false };
    const lockout: jest.Mocked<Pick<LoginLockout, 'admit' | 'failed' | 'succeeded' | 'release'>> = {
      admit: jest
        .fn<Promise<Admission>, Parameters<LoginLockout['admit']>>()
        .mockResolvedValue(options.admission ?? { admitted }),
      failed: jest
        .fn<Promise<FailureRecorded>, Parameters<LoginLockout['failed']>>()
        .mockResolvedValue({ lockedUntil: null, lockedNow: [], failures: 1, ...options.failure }),
      succeeded: jest.fn<Promise<void>, Parameters<LoginLockout['succeeded']>>().mockResolvedValue(undefined),
      release: jest.fn<Promise<void>, Parameters<LoginLockout['release']>>().mockResolvedValue(undefined),
    };
    const signedIn: SignedIn = {
      accessToken: 'jwt',
      refreshToken: 'refresh',
      tokenType: 'Bearer',
      expiresIn: 900,
      user: account(),
    };
    const signIn: jest.Mocked<Pick<SignInService, 'attempt' | 'complete' | 'refuse'>> = {
      // The real attempt counts a refusal for load (SignInService's spec); here it only runs the work.
      attempt: jest.fn((work) => work()) as jest.Mocked<SignInService>['attempt'],
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
    const mfaLogin: jest.Mocked<Pick<MfaLoginService, 'challenge'>> = {
      challenge: jest
        .fn<Promise<MfaChallenge>, Parameters<MfaLoginService['challenge']>>()
        .mockResolvedValue({ mfaRequired: true, mfaToken: 'mfa', expiresIn: 300 }),
    };
    const hasher = new FakeHasher();
    const gate = new CredentialGate(
      lockout as unknown as LoginLockout,
      signIn as unknown as SignInService,
      audit as unknown as AuditService,
      new FixedClock(),
    );
    const sut = new LoginService(
      users as unknown as UsersService,
      hasher,
      signIn as unknown as SignInService,
      gate,
      mfaLogin as unknown as MfaLoginService,
    );
    return { sut, users, lockout, admitted, signIn, audit, mfaLogin, hasher, signedIn };
  }

  it('should spend one comparison on an unknown email and count it like a wrong password', async () => {
    const { sut, hasher, signIn, lockout, admitted } = setup({ user: null });

    await expect(sut.login('ghost@example.test', 'a guess', META)).rejects.toMatchObject({
      status: 401,
      code: 'INVALID_CREDENTIALS',
    });

    expect(hasher.compared).toEqual(['verifyNothing a guess']);
    expect(lockout.admit).toHaveBeenCalledWith('ghost@example.test', '203.0.113.9');
    expect(lockout.failed).toHaveBeenCalledWith(admitted);
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

    expect(lockout.admit).toHaveBeenCalledWith('ada@example.test', '2001:db8:5:6::/64');
    expect(lockout.failed).toHaveBeenCalledTimes(1);
  });

  it('should answer 401 on the failure that locks, and audit each lock it set', async () => {
    const { sut, audit } = setup({
      failure: { lockedUntil: UNTIL, lockedNow: ['client', 'account'], failures: 5 },
    });

    await expect(sut.login('ada@example.test', 'wrong password', META)).rejects.toMatchObject({
      status: 401,
      code: 'INVALID_CREDENTIALS',
    });

    expect(audit.record.mock.calls).toEqual(
      (['client', 'account'] as const).map((scope) => [
        'auth.locked',
        {
          userId: 7,
          meta: META,
          outcome: 'failure',
          metadata: { scope, until: UNTIL.toISOString(), failures: 5 },
        },
      ]),
    );
  });

  it('should check no password while locked, answering 429 with Retry-After', async () => {
    const { sut, hasher, signIn, lockout } = setup({ admission: { lockedUntil: UNTIL } });

    const refused = sut.login('ada@example.test', 'right password', META);

    await expect(refused).rejects.toMatchObject({ status: 429, code: 'ACCOUNT_LOCKED' });
    await expect(refused).rejects.toHaveProperty('headers', { 'Retry-After': '90' });
    expect(hasher.compared).toEqual(['verifyNothing right password']);
    expect(lockout.failed).not.toHaveBeenCalled();
    expect(signIn.refuse.mock.calls[0][0]).toMatchObject({ userId: 7, reason: 'locked' });
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should hand a right password to the sign-in pipeline and start the count over', async () => {
    const { sut, signIn, lockout, admitted, signedIn } = setup();

    await expect(sut.login('ada@example.test', 'right password', META)).resolves.toBe(signedIn);

    expect(signIn.complete).toHaveBeenCalledWith(expect.objectContaining({ id: 7 }), {
      method: 'password',
      meta: META,
      password: 'right password',
    });
    expect(lockout.succeeded).toHaveBeenCalledWith(admitted);
    expect(lockout.failed).not.toHaveBeenCalled();
    expect(signIn.refuse).not.toHaveBeenCalled();
  });

  it('should neither count nor start over a right password that still owes its second factor', async () => {
    const { sut, lockout, admitted, mfaLogin, signIn } = setup({
      user: account({ totpEnabledAt: NOW, totpSecret: 'sealed' }),
    });

    await expect(sut.login('ada@example.test', 'right password', META)).resolves.toMatchObject({
      mfaRequired: true,
    });

    expect(lockout.release).toHaveBeenCalledWith(admitted);
    expect(lockout.succeeded).not.toHaveBeenCalled();
    expect(lockout.failed).not.toHaveBeenCalled();
    expect(mfaLogin.challenge).toHaveBeenCalledTimes(1);
    expect(signIn.complete).not.toHaveBeenCalled();
  });

  it('should give the place back when the hashing queue is full, never counting a failure', async () => {
    const { sut, hasher, signIn, lockout, admitted } = setup();
    hasher.busy = true;

    await expect(sut.login('ada@example.test', 'right password', META)).rejects.toMatchObject({
      status: 503,
      code: 'AUTH_BUSY',
    });

    expect(lockout.release).toHaveBeenCalledWith(admitted);
    expect(lockout.failed).not.toHaveBeenCalled();
    expect(signIn.refuse).not.toHaveBeenCalled();
  });

  it('should refuse for load, checking nothing, when the checks in flight do not settle in time', async () => {
    const { sut, hasher, signIn, lockout } = setup({ admission: { busy: true } });

    await expect(sut.login('ada@example.test', 'right password', META)).rejects.toMatchObject({
      status: 503,
      code: 'AUTH_BUSY',
    });

    expect(hasher.compared).toEqual([]);
    expect(lockout.release).not.toHaveBeenCalled();
    expect(signIn.refuse).not.toHaveBeenCalled();
  });
});
