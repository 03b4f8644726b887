import { createHash } from 'node:crypto';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { normalizeEmail } from '../users/email.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { type LoginFailureReason, type SignedIn, SignInService } from './sign-in.service.js';

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
 * "not verified" and "disabled" are only said after a correct password. After
 * AUTH_LOCKOUT_THRESHOLD consecutive failures the account locks for a period that doubles each time.
 */
@Injectable()
export class LoginService {
  private readonly auth: Config['auth'];

  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly signIn: SignInService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @InjectThrottlerStorage() private readonly throttles: ThrottlerStorage,
    config: ConfigService<Config, true>,
  ) {
    this.auth = config.getOrThrow('auth', { infer: true });
  }

  async login(email: string, password: string, meta: RequestMeta): Promise<SignedIn> {
    try {
      return await this.attempt(email, password, meta);
    } catch (error) {
      // Outcomes are counted by the sign-in pipeline; a full hashing queue never reaches it.
      if (error instanceof AppException && error.code === 'AUTH_BUSY') {
        this.metrics.loginAttempt('throttled');
      }
      throw error;
    }
  }

  private async attempt(email: string, password: string, meta: RequestMeta): Promise<SignedIn> {
    const user = await this.users.findByEmailWithHash(email);
    if (!user) {
      return this.refuseUnknown(email, password, meta);
    }
    const now = this.clock.now();
    const attempts = await this.users.reserveLoginAttempt(user.id, now);
    if (attempts === null || attempts > this.auth.lockoutThreshold) {
      // Locked, or parallel guesses already used up the threshold: no password is checked.
      await this.hasher.verifyNothing(password);
      const until =
        attempts === null && user.lockedUntil ? user.lockedUntil : await this.lockNow(user, now, meta);
      return this.refuse(user.id, 'locked', meta, locked(until, now));
    }
    if (!(await this.hasher.verify(password, user.passwordHash))) {
      if (attempts >= this.auth.lockoutThreshold) {
        await this.lockNow(user, now, meta);
      }
      return this.refuse(user.id, 'wrong_password', meta, invalidCredentials(), { failures: attempts });
    }
    if (this.signIn.barrier(user)) {
      // The password was right: this attempt must not count toward a lockout.
      await this.users.clearFailedLogins(user.id);
    }
    return this.signIn.complete(user, { method: 'password', meta, password });
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

  /**
   * An unknown address fails exactly like a known one: one bcrypt comparison, 401 until the threshold,
   * then the same 429 ACCOUNT_LOCKED for the same period, counted per address in the throttler's
   * storage (shared through Redis when configured). A lockout must not tell an attacker which
   * addresses have accounts.
   */
  private async refuseUnknown(email: string, password: string, meta: RequestMeta): Promise<never> {
    await this.hasher.verifyNothing(password);
    const key = `login-unknown:${createHash('sha256').update(normalizeEmail(email)).digest('hex')}`;
    const period = this.auth.lockoutDurationMs;
    const { isBlocked, timeToBlockExpire } = await this.throttles.increment(
      key,
      period,
      this.auth.lockoutThreshold,
      period,
      'lockout',
    );
    if (isBlocked) {
      const now = this.clock.now();
      const until = new Date(now.getTime() + timeToBlockExpire * 1000);
      return this.refuse(null, 'locked', meta, locked(until, now));
    }
    return this.refuse(null, 'unknown_email', meta, invalidCredentials());
  }

  /** Locks for a period that doubles with each lockout in a row; audits only the call that locked. */
  @Transactional()
  private async lockNow(user: User, now: Date, meta: RequestMeta): Promise<Date> {
    const until = new Date(
      now.getTime() + this.auth.lockoutDurationMs * 2 ** Math.min(user.lockoutCount, 10),
    );
    if (await this.users.lock(user.id, until, now)) {
      await this.audit.record('auth.locked', {
        userId: user.id,
        meta,
        outcome: 'failure',
        metadata: { until: until.toISOString(), lockouts: user.lockoutCount + 1 },
      });
    }
    return until;
  }
}

function locked(until: Date, now: Date): AppException {
  const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new AppException(
    HttpStatus.TOO_MANY_REQUESTS,
    'ACCOUNT_LOCKED',
    'Too many failed sign-ins; try again later or reset your password.',
    undefined,
    { 'Retry-After': String(seconds) },
  );
}
