import { HttpStatus, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Clock } from '../common/clock.js';
import { mapPage, type Page } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { RegistrationService } from '../auth/registration.service.js';
import { SessionsService } from '../auth/sessions.service.js';
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
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async list(query: ListAdminUsersQueryDto): Promise<Page<AdminUserDto>> {
    const page = await this.users.search(query.email || undefined, query);
    const now = this.clock.now();
    return mapPage(page, (user) => toAdminUser(user, now));
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
    await this.act(actor, userId, 'admin.user_disabled', meta, async (_user, manager) => {
      const now = this.clock.now();
      await this.users.disable(userId, now, manager);
      const sessionsRevoked = await this.sessions.revokeAll(userId, 'account_disabled');
      return { sessionsRevoked };
    });
  }

  async enable(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.user_enabled', meta, async (_user, manager) => {
      await this.users.enable(userId, manager);
      return {};
    });
  }

  /** Ends a brute-force lockout and resets the failure counters, so the next lockout starts short. */
  async unlock(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.user_unlocked', meta, async (user, manager) => {
      await this.users.unlock(userId, manager);
      return { failedLoginCount: user.failedLoginCount, lockoutCount: user.lockoutCount };
    });
  }

  /** A fresh verification link, mailed through the outbox in the same transaction. */
  async resendVerification(actor: AuthUser, userId: number, meta: RequestMeta): Promise<void> {
    await this.act(actor, userId, 'admin.verification_resent', meta, async (user, manager) => {
      if (user.isVerified) {
        throw new AppException(
          HttpStatus.CONFLICT,
          'ALREADY_VERIFIED',
          'This account’s email address is already verified.',
        );
      }
      await this.registration.issueVerification(user, manager);
      return {};
    });
  }

  /** Loads the account (404 if missing), applies the change and writes its audit row, all in one transaction. */
  private async act(
    actor: AuthUser,
    userId: number,
    event: string,
    meta: RequestMeta,
    change: (user: User, manager: EntityManager) => Promise<Record<string, unknown>>,
  ): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const user = await this.users.findById(userId, manager);
      if (!user) {
        throw new AppException(HttpStatus.NOT_FOUND, 'USER_NOT_FOUND', 'No account has this id.');
      }
      const metadata = await change(user, manager);
      await this.audit.record(event, { userId, actorUserId: actor.id, meta, metadata }, manager);
    });
  }
}
