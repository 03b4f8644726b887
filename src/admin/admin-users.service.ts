import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Clock } from '../common/clock.js';
import { mapPage, type Page } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { RegistrationService } from '../auth/registration.service.js';
import { SessionsService } from '../auth/sessions.service.js';
import { MfaService } from '../auth/mfa/mfa.service.js';
import { LoginLockout } from '../users/login-lockout.service.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { type AdminUserDto, type ListAdminUsersQueryDto, toAdminUser } from './dto/admin-user.dto.js';

/**
 * Operator actions on accounts. Each one runs in a transaction with its audit row, which names the
 * account (user_id) and the administrator who acted (actor_user_id).
 */
@Injectable()
export class AdminUsersService {
  constructor(
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly registration: RegistrationService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly uow: UnitOfWork,
    private readonly lockout: LoginLockout,
    private readonly mfa: MfaService,
  ) {}

  async list(query: ListAdminUsersQueryDto): Promise<Page<AdminUserDto>> {
    const page = await this.users.search(query.email || undefined, query);
    const now = this.clock.now();
    const lockouts = await this.lockout.statesOf(
      page.items.map((user) => user.email),
      now,
    );
    return mapPage(page, (user) => toAdminUser(user, lockouts.get(user.email), now));
  }

  /** Blocks sign-in and kills every session at once; an admin cannot lock themselves out this way. */
  async disable(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    if (userId === actor.id) {
      throw new AppException(
        HttpStatus.BAD_REQUEST,
        'CANNOT_DISABLE_SELF',
        'An administrator cannot disable their own account.',
      );
    }
    await this.act(actor, userId, 'admin.user_disabled', meta, async () => {
      await this.users.disable(userId, this.clock.now());
      const sessionsRevoked = await this.sessions.revokeAll(userId, 'account_disabled');
      return { sessionsRevoked };
    });
  }

  async enable(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.user_enabled', meta, async () => {
      await this.users.enable(userId);
      return {};
    });
  }

  /** Ends every brute-force lock on the address (on every client) and resets its failure counters. */
  async unlock(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.user_unlocked', meta, async (user) => {
      const state = (await this.lockout.statesOf([user.email], this.clock.now())).get(user.email);
      const countersCleared = await this.lockout.unlock(user.email);
      return {
        failedLoginCount: state?.failures ?? 0,
        lockedUntil: state?.lockedUntil?.toISOString() ?? null,
        countersCleared,
      };
    });
  }

  /** Turns the account's TOTP off (its owner lost the authenticator and the recovery codes); mails the owner. */
  async resetMfa(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.mfa_reset', meta, (user) =>
      this.mfa.resetByOperator(user, actor.id, meta),
    );
  }

  /**
   * A fresh verification link (carrying no password), mailed through the outbox in the same
   * transaction, within the address's mail budget like every other mail: over it, nothing is queued
   * and the audit row says `mailed: false` (plus a `mail.suppressed` row).
   */
  async resendVerification(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.verification_resent', meta, async (user) => {
      if (user.isVerified) {
        throw new AppException(
          HttpStatus.CONFLICT,
          'ALREADY_VERIFIED',
          'This account’s email address is already verified.',
        );
      }
      const mailed = await this.registration.mailVerification(user, null, meta, actor.id);
      return { mailed };
    });
  }

  /**
   * Holds the account's row (404 if missing), reads it, applies the change and writes its audit row,
   * in one unit of work. Holding before reading makes the change act on the account as it is: an
   * owner's deletion, confirmation or verification either committed first (and is what the read
   * sees) or waits for this one. A plain read first let MariaDB act on a copy, e.g. disable and audit
   * an account its owner had deleted meanwhile.
   */
  @Transactional()
  private async act(
    actor: AuthUser,
    userId: number,
    event: string,
    meta: RequestMeta,
    change: (user: User) => Promise<Record<string, unknown>>,
  ): Promise<void> {
    const user = (await this.users.holdAccount(userId)) ? await this.users.findById(userId) : null;
    if (!user) {
      throw new AppException(HttpStatus.NOT_FOUND, 'USER_NOT_FOUND', 'No account has this id.');
    }
    const metadata = await change(user);
    await this.audit.record(event, { userId, actorUserId: actor.id, meta, metadata });
  }
}
