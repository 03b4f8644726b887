import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import { MailService } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import { UsersService } from '../users/users.service.js';
import { PasswordChangeService } from './password-change.service.js';

/** Forgot / reset password. Forgot answers the same for every address; reset never logs in. */
@Injectable()
export class PasswordResetService {
  constructor(
    private readonly users: UsersService,
    private readonly passwords: PasswordChangeService,
    private readonly tokens: TokensService,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly uow: UnitOfWork,
  ) {}

  /** Works for locked accounts too: resetting is how a locked-out owner gets back in. */
  @Transactional()
  async forgotPassword(rawEmail: string, meta: RequestMeta): Promise<void> {
    const user = await this.users.findByEmail(rawEmail);
    if (!user || user.disabledAt) {
      return;
    }
    // The token is issued only if the address's mail budget lets the mail go out.
    const queued = await this.mail.enqueue('reset-password', user.email, async () => ({
      token: await this.tokens.issue('password_reset', user.id),
    }));
    if (queued) {
      await this.audit.record('password.reset_requested', { userId: user.id, meta });
    } else {
      await this.audit.record('mail.suppressed', {
        userId: user.id,
        outcome: 'failure',
        meta,
        metadata: { template: 'reset-password', reason: 'budget' },
      });
    }
  }

  /**
   * Sets the password, revokes every session and every other reset token, marks the email verified
   * (the reset link proved the owner reads it), unlocks the account and mails a notice.
   */
  async resetPassword(token: string, password: string, meta: RequestMeta): Promise<void> {
    const userId = await this.tokens.peek('password_reset', token);
    const owner = userId === null ? null : await this.users.findById(userId);
    if (!owner) {
      // consume() tells an expired token from an unknown one; it burns nothing that still works.
      await this.tokens.consume('password_reset', token);
      throw new AppException(HttpStatus.BAD_REQUEST, 'TOKEN_INVALID', 'This link is not valid.');
    }
    if (owner.disabledAt) {
      // A disabled account's password stays as the operator left it; the link answers like a bad one.
      await this.audit.record('password.reset_refused', {
        userId: owner.id,
        outcome: 'failure',
        meta,
        metadata: { reason: 'account_disabled' },
      });
      throw new AppException(HttpStatus.BAD_REQUEST, 'TOKEN_INVALID', 'This link is not valid.');
    }
    // Hashed before the unit of work opens: a transaction never waits on bcrypt.
    const passwordHash = await this.passwords.hashAcceptable(password, owner);
    await this.applyReset(token, owner, passwordHash, meta);
  }

  @Transactional()
  private async applyReset(
    token: string,
    owner: { email: string; isVerified: boolean },
    passwordHash: string,
    meta: RequestMeta,
  ): Promise<void> {
    // Consumption is the atomic step: of two concurrent resets with one link, one wins.
    const consumedBy = await this.tokens.consume('password_reset', token);
    if ((await this.users.findById(consumedBy))?.disabledAt) {
      // Disabled since the check above: the unit of work rolls back, nothing changes.
      throw new AppException(HttpStatus.BAD_REQUEST, 'TOKEN_INVALID', 'This link is not valid.');
    }
    await this.users.markVerified(consumedBy);
    await this.users.unlock(consumedBy);
    await this.passwords.apply({ id: consumedBy, email: owner.email }, passwordHash, {
      event: 'password.reset',
      reason: 'password_reset',
      meta,
    });
    if (!owner.isVerified) {
      this.events.publish('user.verified', { userId: consumedBy });
    }
  }
}
