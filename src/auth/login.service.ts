import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { clientKey } from '../common/client-key.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LoginLockout } from '../users/login-lockout.service.js';
import { hasTotp, type User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { type MfaChallenge, MfaLoginService } from './mfa/mfa-login.service.js';
import { accountLocked, type LoginFailureReason, type SignedIn, SignInService } from './sign-in.service.js';

function invalidCredentials(): AppException {
  return new AppException(
    HttpStatus.UNAUTHORIZED,
    'INVALID_CREDENTIALS',
    'The email or password is incorrect.',
  );
}

/**
 * Password login: what is specific to passwords, then the sign-in pipeline (SignInService). An
 * unknown email and a wrong password give the same answer and cost the same one bcrypt comparison;
 * "not verified" and "disabled" are only said after a correct password. Failures are counted by
 * LoginLockout per (address, client) and account-wide, under a hash of the address, so a known and an
 * unknown address walk through exactly the same counters, statuses, headers and periods.
 */
@Injectable()
export class LoginService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly signIn: SignInService,
    private readonly lockout: LoginLockout,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly mfaLogin: MfaLoginService,
  ) {}

  /** Tokens, or — for an account with TOTP, and only after a correct password — an mfaToken for the second step. */
  async login(email: string, password: string, meta: RequestMeta): Promise<SignedIn | MfaChallenge> {
    try {
      return await this.attempt(email, password, meta);
    } catch (error) {
      // Outcomes are counted by the sign-in pipeline; a full hashing queue never reaches it, and is
      // no failed sign-in either: nothing was checked, so nothing is counted toward a lockout.
      if (error instanceof AppException && error.code === 'AUTH_BUSY') {
        this.metrics.loginAttempt('throttled');
      }
      throw error;
    }
  }

  private async attempt(
    email: string,
    password: string,
    meta: RequestMeta,
  ): Promise<SignedIn | MfaChallenge> {
    const client = clientKey(meta.ip);
    const now = this.clock.now();
    const user = await this.users.findByEmailWithHash(email);
    const lockedUntil = await this.lockout.lockedUntil(email, client, now);
    if (lockedUntil) {
      // No password is checked while locked, but the same bcrypt time is spent.
      await this.hasher.verifyNothing(password);
      return this.refuse(user?.id ?? null, 'locked', meta, accountLocked(lockedUntil, now));
    }
    const correct = user
      ? await this.hasher.verify(password, user.passwordHash)
      : await this.hasher.verifyNothing(password);
    if (!user || !correct) {
      return this.refuseWrong(email, client, user, meta, now);
    }
    if (hasTotp(user)) {
      // Up to here the path is the same for every account, so a wrong password costs the same time
      // with or without TOTP. A correct one does not start the failure count over here: the second
      // factor does, once proved, or whoever has the password could guess codes without limit.
      return this.mfaLogin.challenge(user, meta);
    }
    // The password was right, whether or not the account may sign in: nothing counts against it.
    await this.lockout.recordSuccess(email, client);
    return this.signIn.complete(user, { method: 'password', meta, password });
  }

  private async refuseWrong(
    email: string,
    client: string,
    user: User | null,
    meta: RequestMeta,
    now: Date,
  ): Promise<never> {
    const userId = user?.id ?? null;
    const { lockedUntil, lockedNow, failures } = await this.lockout.recordFailure(email, client, now);
    for (const scope of lockedNow) {
      await this.audit.record('auth.locked', {
        userId,
        meta,
        outcome: 'failure',
        metadata: { scope, until: lockedUntil?.toISOString() ?? null, failures },
      });
    }
    // The failure that reaches the threshold still answers 401; a guess that raced past a lock another
    // request just set answers as locked.
    const answer =
      lockedUntil && lockedNow.length === 0 ? accountLocked(lockedUntil, now) : invalidCredentials();
    const reason: LoginFailureReason = user ? 'wrong_password' : 'unknown_email';
    return this.refuse(userId, reason, meta, answer, { failures });
  }

  private refuse(
    userId: number | null,
    reason: LoginFailureReason,
    meta: RequestMeta,
    answer: AppException,
    details?: Record<string, unknown>,
  ): Promise<never> {
    return this.signIn.refuse({ userId, reason, method: 'password', meta, details }, answer);
  }
}
