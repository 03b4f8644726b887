import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { PasswordChangeService } from './password-change.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import './account.events.js';

/** What a signed-in user does to their own credentials: change the password, delete the account. */
@Injectable()
export class AccountService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly passwords: PasswordChangeService,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly uow: UnitOfWork,
  ) {}

  /** Keeps the current session, revokes the others and any outstanding reset link, mails a notice. */
  async changePassword(
    caller: AuthUser,
    currentPassword: string,
    newPassword: string,
    meta: RequestMeta,
  ): Promise<void> {
    const user = await this.verifiedCaller(caller, currentPassword, meta, 'password.change_failed');
    const passwordHash = await this.passwords.hashAcceptable(newPassword, user, 'newPassword');
    await this.whileStillProved(user, meta, 'password.change_failed', () =>
      this.passwords.apply(user, passwordHash, {
        event: 'password.changed',
        reason: 'password_changed',
        keepSessionId: caller.sessionId,
        meta,
      }),
    );
  }

  /** Removes the user; tokens, sessions and todos go with it (FK cascades). The audit trail stays. */
  async deleteAccount(caller: AuthUser, password: string, meta: RequestMeta): Promise<void> {
    const user = await this.verifiedCaller(caller, password, meta, 'user.delete_failed');
    await this.whileStillProved(user, meta, 'user.delete_failed', () => this.deleteUser(user.id, meta));
  }

  /**
   * Runs `work` in one unit of work that first holds the account's row while its password hash is
   * still the one `verifiedCaller` checked and it is not disabled. A password change or reset (which
   * also revoked the caller's other sessions) or a disable that committed after the check makes the
   * proof stale: nothing is done, `failureEvent` is audited (`credentials_changed` or
   * `account_disabled`) and 401 INVALID_PASSWORD thrown. One that comes after waits for the row.
   */
  async whileStillProved<T>(
    user: Pick<User, 'id' | 'passwordHash'>,
    meta: RequestMeta,
    failureEvent: string,
    work: () => Promise<T>,
  ): Promise<T> {
    try {
      return await this.uow.withTransaction(async () => {
        if (!(await this.users.holdIfPasswordIs(user.id, user.passwordHash))) {
          throw new ProofStale();
        }
        return work();
      });
    } catch (error) {
      if (!(error instanceof ProofStale)) {
        throw error;
      }
      const disabled = await this.users.isDisabled(user.id);
      await this.audit.record(failureEvent, {
        userId: user.id,
        meta,
        outcome: 'failure',
        metadata: { reason: disabled ? 'account_disabled' : 'credentials_changed' },
      });
      throw invalidPassword();
    }
  }

  /**
   * The caller, once they have typed their password again (a stolen access token alone must not
   * change credentials); otherwise `failureEvent` is audited and 401 INVALID_PASSWORD thrown.
   */
  async verifiedCaller(
    caller: AuthUser,
    password: string,
    meta: RequestMeta,
    failureEvent: string,
  ): Promise<User> {
    const user = await this.users.findByIdWithHash(caller.id);
    if (!user || !(await this.hasher.verify(password, user.passwordHash))) {
      await this.audit.record(failureEvent, {
        userId: caller.id,
        meta,
        outcome: 'failure',
        metadata: { reason: 'wrong_password' },
      });
      throw invalidPassword();
    }
    return user;
  }

  @Transactional()
  private async deleteUser(userId: number, meta: RequestMeta): Promise<void> {
    await this.audit.record('user.deleted', { userId, meta });
    await this.users.delete(userId);
    this.events.publish('user.deleted', { userId });
  }
}

function invalidPassword(): AppException {
  return new AppException(HttpStatus.UNAUTHORIZED, 'INVALID_PASSWORD', 'The current password is incorrect.');
}

/** Thrown inside the unit of work to roll it back when the password was checked against a hash since replaced. */
class ProofStale extends Error {}
