import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { afterCommit, Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import { type LoginOutcome, MetricsService } from '../metrics/metrics.service.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import './auth.events.js';
import { PasswordHasher } from './password-hasher.service.js';
import { SessionsService, type TokenPair } from './sessions.service.js';

/**
 * How the user proved who they are: a password alone, or a password then a TOTP code or a recovery
 * code (DESIGN §10). Later methods (magic link, OAuth) add their name here.
 */
export type SignInMethod = 'password' | 'totp' | 'recovery_code';

/** Every reason a sign-in is refused, with the login-metric outcome it counts as. */
export const LOGIN_FAILURES = {
  unknown_email: 'invalid_credentials',
  wrong_password: 'invalid_credentials',
  locked: 'locked',
  disabled: 'account_disabled',
  email_not_verified: 'email_not_verified',
  /**
   * The proof was right when checked, but the password changed, TOTP was turned on for a password-only
   * sign-in, or the account went, before the session could open: a change must leave no session it
   * did not see (DESIGN §5). A disable in between is refused as `disabled`.
   */
  credentials_changed: 'invalid_credentials',
  /** A wrong, replayed or spent TOTP code or recovery code after a correct password. */
  mfa_invalid: 'invalid_credentials',
  /** An mfaToken that is unknown, used, expired or out of attempts. */
  mfa_token_invalid: 'invalid_credentials',
} as const satisfies Record<string, LoginOutcome>;

export type LoginFailureReason = keyof typeof LOGIN_FAILURES;

/** The audit event each refusal is recorded as (DESIGN §4 names `auth.mfa_failed` for the second step). */
const REFUSAL_EVENTS: Record<LoginFailureReason, 'auth.login_failed' | 'auth.mfa_failed'> = {
  unknown_email: 'auth.login_failed',
  wrong_password: 'auth.login_failed',
  locked: 'auth.login_failed',
  disabled: 'auth.login_failed',
  email_not_verified: 'auth.login_failed',
  credentials_changed: 'auth.login_failed',
  mfa_invalid: 'auth.mfa_failed',
  mfa_token_invalid: 'auth.mfa_failed',
};

/** 401 INVALID_CREDENTIALS: an unknown email and a wrong password alike. */
export function invalidCredentials(): AppException {
  return new AppException(
    HttpStatus.UNAUTHORIZED,
    'INVALID_CREDENTIALS',
    'The email or password is incorrect.',
  );
}

/** 429 ACCOUNT_LOCKED with the seconds until `until` as Retry-After. */
export function accountLocked(until: Date, now: Date): AppException {
  const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new AppException(
    HttpStatus.TOO_MANY_REQUESTS,
    'ACCOUNT_LOCKED',
    'Too many failed sign-ins; try again later or reset your password.',
    undefined,
    { 'Retry-After': String(seconds) },
  );
}

/** What refuses an account that proved who it is, in the order they are checked. */
export type SignInBarrier = Extract<LoginFailureReason, 'disabled' | 'email_not_verified'>;

const BARRIER_ANSWERS: Record<SignInBarrier, () => AppException> = {
  disabled: () =>
    new AppException(HttpStatus.FORBIDDEN, 'ACCOUNT_DISABLED', 'This account has been disabled.'),
  email_not_verified: () =>
    new AppException(
      HttpStatus.FORBIDDEN,
      'EMAIL_NOT_VERIFIED',
      'Verify your email address before signing in.',
    ),
};

/** A user who has just proved who they are, by `method`. */
export interface SignInAttempt {
  method: SignInMethod;
  meta: RequestMeta;
  /** The plain password, when the method checked one: an old-cost hash is upgraded with it. */
  password?: string;
}

/** A refused sign-in, as the audit trail, the metrics and the `auth.login_failed` event see it. */
export interface SignInRefusal {
  /** Null for an address with no account. */
  userId: number | null;
  reason: LoginFailureReason;
  method: SignInMethod;
  meta: RequestMeta;
  /** More for the audit row (never a secret), e.g. how many failures in a row. */
  details?: Record<string, unknown>;
}

export type SignedIn = TokenPair & { user: User };

/**
 * The one sign-in pipeline. Every login method proves the user in its own way (a password, a TOTP
 * code, a mailed link) and then ends here: `complete()` checks the account may sign in, opens the
 * session, records the login, upgrades an old password hash, writes the audit row and counts the
 * metric in one unit of work, and publishes `auth.login_succeeded` once it commits. Every refusal,
 * whichever step makes it, goes through `refuse()`.
 */
@Injectable()
export class SignInService {
  private readonly requireVerifiedEmail: boolean;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly hasher: PasswordHasher,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
  ) {
    this.requireVerifiedEmail = config.getOrThrow('auth', { infer: true }).requireVerifiedEmail;
  }

  /**
   * What keeps this account out even though it proved who it is, or null. Say it only after the proof
   * (a correct password): before it, "disabled" or "not verified" would tell a stranger the account exists.
   */
  barrier(user: Pick<User, 'disabledAt' | 'isVerified'>): SignInBarrier | null {
    if (user.disabledAt) {
      return 'disabled';
    }
    if (this.requireVerifiedEmail && !user.isVerified) {
      return 'email_not_verified';
    }
    return null;
  }

  /** Refuses (403 ACCOUNT_DISABLED / EMAIL_NOT_VERIFIED, recorded) an account that proved who it is but may not sign in. */
  async assertMaySignIn(user: User, attempt: SignInAttempt): Promise<void> {
    const barrier = this.barrier(user);
    if (barrier) {
      await this.refuse(
        { userId: user.id, reason: barrier, method: attempt.method, meta: attempt.meta },
        BARRIER_ANSWERS[barrier](),
      );
    }
  }

  /**
   * Signs in a user who has just proved who they are; 403 ACCOUNT_DISABLED / EMAIL_NOT_VERIFIED
   * otherwise, and `stale` (recorded as `credentials_changed`) when the password changed after the
   * proof was checked. `user` must carry the password hash as it was read before the proof.
   */
  async complete(
    user: User,
    attempt: SignInAttempt,
    stale: () => AppException = invalidCredentials,
  ): Promise<SignedIn> {
    await this.assertMaySignIn(user, attempt);
    // Upgrading an old-cost hash needs the plain password, which only a password sign-in has. Hashed
    // before the unit of work opens: bcrypt is slow, and a transaction must not wait on it.
    const rehashed =
      attempt.password !== undefined && this.hasher.needsRehash(user.passwordHash)
        ? await this.hasher.hash(attempt.password)
        : null;
    const now = this.clock.now();
    try {
      const tokens = await this.openSession(user, attempt, rehashed, now);
      return { ...tokens, user: { ...user, lastLoginAt: now } };
    } catch (error) {
      if (error instanceof CredentialsChanged) {
        return this.refuseChanged(user.id, attempt, stale);
      }
      throw error;
    }
  }

  /**
   * Refuses a sign-in whose proof was right when checked but no longer stands: the account was
   * disabled since (403 ACCOUNT_DISABLED, recorded as `disabled`), or its password or second factor
   * changed, or it went (`stale()`, recorded as `credentials_changed`).
   */
  async refuseChanged(
    userId: number,
    attempt: Pick<SignInAttempt, 'method' | 'meta'>,
    stale: () => AppException = invalidCredentials,
  ): Promise<never> {
    const disabled = await this.users.isDisabled(userId);
    const { method, meta } = attempt;
    return disabled
      ? this.refuse({ userId, reason: 'disabled', method, meta }, BARRIER_ANSWERS.disabled())
      : this.refuse({ userId, reason: 'credentials_changed', method, meta }, stale());
  }

  /**
   * Runs one sign-in attempt, whatever its method. A refusal for load (503 AUTH_BUSY: a full hashing
   * queue, or checks in flight on the address that did not settle in time) never reaches `refuse()`
   * and is no failed sign-in either — nothing was checked, so nothing counts toward a lockout — and is
   * counted here as throttled.
   */
  async attempt<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof AppException && error.code === 'AUTH_BUSY') {
        this.metrics.loginAttempt('throttled');
      }
      throw error;
    }
  }

  /**
   * Records a refused sign-in (audit row with its reason, metric, `auth.login_failed` event) and throws
   * `answer`, what the client is told. Call it outside a unit of work: the record commits on its own,
   * so the refusal stays on the trail although the request fails.
   */
  async refuse(refusal: SignInRefusal, answer: AppException): Promise<never> {
    await this.recordRefusal(refusal);
    throw answer;
  }

  @Transactional()
  private async openSession(
    user: Pick<User, 'id' | 'passwordHash'>,
    attempt: SignInAttempt,
    rehashed: string | null,
    now: Date,
  ): Promise<TokenPair> {
    const userId = user.id;
    // First, so the account's row is held while the session opens: a password change or reset, a
    // disable, or (for a password-only sign-in) TOTP turned on, that committed after the proof was
    // checked (its revocation could not see this session) refuses here.
    const withoutTotp = attempt.method === 'password';
    if (!(await this.users.recordLogin(userId, now, user.passwordHash, rehashed, withoutTotp))) {
      throw new CredentialsChanged();
    }
    const { sessionId, tokens } = await this.sessions.open(userId, attempt.meta);
    await this.audit.record('auth.login_succeeded', {
      userId,
      meta: attempt.meta,
      metadata: { sessionId, method: attempt.method, ...(rehashed ? { rehashed: true } : {}) },
    });
    this.events.publish('auth.login_succeeded', { userId, sessionId, method: attempt.method });
    afterCommit(() => this.metrics.loginAttempt('success'));
    return tokens;
  }

  @Transactional()
  private async recordRefusal(refusal: SignInRefusal): Promise<void> {
    const { userId, reason, method } = refusal;
    await this.audit.record(REFUSAL_EVENTS[reason], {
      userId,
      meta: refusal.meta,
      outcome: 'failure',
      metadata: { reason, method, ...refusal.details },
    });
    this.events.publish('auth.login_failed', { userId, reason, method });
    afterCommit(() => this.metrics.loginAttempt(LOGIN_FAILURES[reason]));
  }
}

/** Thrown inside the sign-in's unit of work to roll it back when the password changed since its proof. */
class CredentialsChanged extends Error {}
