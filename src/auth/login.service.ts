import { createHash } from 'node:crypto';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { type LoginOutcome, MetricsService } from '../metrics/metrics.service.js';
import { normalizeEmail } from '../users/email.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { SessionsService, type TokenPair } from './sessions.service.js';

export type LoginResult = TokenPair & { user: User };

const LOGIN_OUTCOME_BY_CODE: Record<string, LoginOutcome> = {
  INVALID_CREDENTIALS: 'invalid_credentials',
  EMAIL_NOT_VERIFIED: 'email_not_verified',
  ACCOUNT_DISABLED: 'account_disabled',
  ACCOUNT_LOCKED: 'locked',
  AUTH_BUSY: 'throttled',
};

function invalidCredentials(): AppException {
  return new AppException(
    HttpStatus.UNAUTHORIZED,
    'INVALID_CREDENTIALS',
    'The email or password is incorrect.',
  );
}

/**
 * Password login. An unknown email and a wrong password give the same answer and cost the same one
 * bcrypt comparison; "not verified" and "disabled" are only said after a correct password. After
 * AUTH_LOCKOUT_THRESHOLD consecutive failures the account locks for a period that doubles each time.
 */
@Injectable()
export class LoginService {
  private readonly auth: Config['auth'];

  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly sessions: SessionsService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @InjectThrottlerStorage() private readonly throttles: ThrottlerStorage,
    private readonly uow: UnitOfWork,
    config: ConfigService<Config, true>,
  ) {
    this.auth = config.getOrThrow('auth', { infer: true });
  }

  async login(email: string, password: string, meta: RequestMeta): Promise<LoginResult> {
    try {
      const result = await this.attempt(email, password, meta);
      this.metrics.loginAttempt('success');
      return result;
    } catch (error) {
      const code = error instanceof AppException ? error.code : '';
      this.metrics.loginAttempt(LOGIN_OUTCOME_BY_CODE[code] ?? 'invalid_credentials');
      throw error;
    }
  }

  private async attempt(email: string, password: string, meta: RequestMeta): Promise<LoginResult> {
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
      await this.refuseWrongPassword(user, attempts, now, meta);
    }
    if (user.disabledAt || (this.auth.requireVerifiedEmail && !user.isVerified)) {
      // The password was right: this attempt must not count toward a lockout.
      await this.users.clearFailedLogins(user.id);
    }
    if (user.disabledAt) {
      const disabled = new AppException(
        HttpStatus.FORBIDDEN,
        'ACCOUNT_DISABLED',
        'This account has been disabled.',
      );
      return this.refuse(user.id, 'disabled', meta, disabled);
    }
    if (this.auth.requireVerifiedEmail && !user.isVerified) {
      const unverified = new AppException(
        HttpStatus.FORBIDDEN,
        'EMAIL_NOT_VERIFIED',
        'Verify your email address before signing in.',
      );
      return this.refuse(user.id, 'email_not_verified', meta, unverified);
    }
    // Upgrading an old-cost hash needs the plain password, which only a successful login has.
    const rehashed = this.hasher.needsRehash(user.passwordHash) ? await this.hasher.hash(password) : null;
    const { tokens } = await this.uow.withTransaction(async () => {
      if (rehashed) {
        await this.users.setPasswordHash(user.id, rehashed);
      }
      await this.users.recordLogin(user.id, now);
      const opened = await this.sessions.open(user.id, meta);
      await this.audit.record('auth.login_succeeded', {
        userId: user.id,
        meta,
        metadata: { sessionId: opened.sessionId, ...(rehashed ? { rehashed: true } : {}) },
      });
      return opened;
    });
    return { ...tokens, user: { ...user, lastLoginAt: now } };
  }

  /** Records the refused attempt (with why) and throws the answer the client gets. */
  private async refuse(
    userId: number | null,
    reason: string,
    meta: RequestMeta,
    answer: AppException,
  ): Promise<never> {
    await this.audit.record('auth.login_failed', { userId, meta, outcome: 'failure', metadata: { reason } });
    throw answer;
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

  private async refuseWrongPassword(
    user: User,
    attempts: number,
    now: Date,
    meta: RequestMeta,
  ): Promise<never> {
    await this.audit.record('auth.login_failed', {
      userId: user.id,
      meta,
      outcome: 'failure',
      metadata: { reason: 'wrong_password', failures: attempts },
    });
    if (attempts >= this.auth.lockoutThreshold) {
      await this.lockNow(user, now, meta);
    }
    throw invalidCredentials();
  }

  /** Locks for a period that doubles with each lockout in a row; audits only the call that locked. */
  private async lockNow(user: User, now: Date, meta: RequestMeta): Promise<Date> {
    const until = new Date(
      now.getTime() + this.auth.lockoutDurationMs * 2 ** Math.min(user.lockoutCount, 10),
    );
    await this.uow.withTransaction(async () => {
      if (await this.users.lock(user.id, until, now)) {
        await this.audit.record('auth.locked', {
          userId: user.id,
          meta,
          outcome: 'failure',
          metadata: { until: until.toISOString(), lockouts: user.lockoutCount + 1 },
        });
      }
    });
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
