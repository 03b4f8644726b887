import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { clientKey } from '../common/client-key.js';
import { Clock } from '../common/clock.js';
import type { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { type AdmittedCheck, LoginLockout } from '../users/login-lockout.service.js';
import { authBusy } from './password-hasher.service.js';
import {
  accountLocked,
  type LoginFailureReason,
  type SignInMethod,
  SignInService,
} from './sign-in.service.js';

/** Whom a credential is checked for, as the lockout, the audit trail and the refusal see it. */
export interface CredentialSubject {
  /** The address named: an account's, or one with no account (both are counted alike). */
  email: string;
  /** Null for an address with no account. */
  userId: number | null;
  method: SignInMethod;
  meta: RequestMeta;
}

/**
 * Where every login method checks its credential — a password, a TOTP code, a recovery code — under
 * the lockout of DESIGN §5. `enter` asks LoginLockout to admit one check before it runs, so that no
 * concurrency buys a guess beyond the thresholds: a locked address is refused (429 ACCOUNT_LOCKED,
 * recorded) and nothing is checked. The login method then runs its check through
 * `CredentialCheck.run` and settles it once: `refuse` when it was wrong, `proved` when it proved the
 * user, `release` when it neither counts nor starts the count over.
 */
@Injectable()
export class CredentialGate {
  constructor(
    private readonly lockout: LoginLockout,
    private readonly signIn: SignInService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /**
   * One admitted check, or a recorded refusal: 429 when locked (after `whileLocked`, which spends the
   * time a check would), 503 AUTH_BUSY when the checks in flight on the address did not settle in time.
   */
  async enter(subject: CredentialSubject, whileLocked?: () => Promise<unknown>): Promise<CredentialCheck> {
    const admission = await this.lockout.admit(subject.email, clientKey(subject.meta.ip));
    if ('busy' in admission) {
      throw authBusy();
    }
    if ('lockedUntil' in admission) {
      await whileLocked?.();
      const { userId, method, meta } = subject;
      return this.signIn.refuse(
        { userId, reason: 'locked', method, meta },
        accountLocked(admission.lockedUntil, this.clock.now()),
      );
    }
    return new CredentialCheck(this.lockout, this.signIn, this.audit, subject, admission.admitted);
  }
}

/** A credential check the lockout admitted; exactly one of `refuse`, `proved`, `release` settles it. */
export class CredentialCheck {
  constructor(
    private readonly lockout: LoginLockout,
    private readonly signIn: SignInService,
    private readonly audit: AuditService,
    private readonly subject: CredentialSubject,
    private readonly admitted: AdmittedCheck,
  ) {}

  /**
   * Runs the check itself. One that throws did not finish (a full hashing queue, a factor another
   * request's sign-in beat): its place is given back, uncounted, and the error goes on.
   */
  async run<T>(check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (error) {
      // The check's own error is the one to report; a place a failed release keeps is ignored once
      // its counter has been idle for a lock period.
      await this.lockout.release(this.admitted).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The credential was wrong: counted, each lock it set audited once (`auth.locked`), the refusal
   * recorded, and `answer` thrown. It was checked, so the answer is the credential's own (401) even
   * when this failure is the one that locks.
   */
  async refuse(
    reason: LoginFailureReason,
    answer: AppException,
    details: Record<string, unknown> = {},
  ): Promise<never> {
    const { userId, method, meta } = this.subject;
    const { lockedUntil, lockedNow, failures } = await this.lockout.failed(this.admitted);
    for (const scope of lockedNow) {
      await this.audit.record('auth.locked', {
        userId,
        meta,
        outcome: 'failure',
        metadata: {
          scope,
          until: lockedUntil?.toISOString() ?? null,
          failures,
          ...(method === 'password' ? {} : { step: 'mfa' }),
        },
      });
    }
    return this.signIn.refuse({ userId, reason, method, meta, details: { ...details, failures } }, answer);
  }

  /** The credential proved the user: the failure counts start over. */
  proved(): Promise<void> {
    return this.lockout.succeeded(this.admitted);
  }

  /** Nothing to count either way (a correct password that still owes its second factor). */
  release(): Promise<void> {
    return this.lockout.release(this.admitted);
  }
}
