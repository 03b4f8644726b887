import { HttpStatus, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { MailService } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import type { AuthUser } from './auth-user.js';
import { PasswordHasher } from './password-hasher.service.js';
import { PasswordPolicy } from './password.policy.js';
import { SessionsRepository } from './sessions.repository.js';

/** What a signed-in user does to their own credentials: change the password, delete the account. */
@Injectable()
export class AccountService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly tokens: TokensService,
    private readonly sessions: SessionsRepository,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** Keeps the current session, revokes the others and any outstanding reset link, mails a notice. */
  async changePassword(
    caller: AuthUser,
    currentPassword: string,
    newPassword: string,
    meta: RequestMeta,
  ): Promise<void> {
    const user = await this.verifiedCaller(caller, currentPassword, meta, 'password.change_failed');
    this.policy.assertAcceptable(newPassword, user, 'newPassword');
    const passwordHash = await this.hasher.hash(newPassword);
    await this.dataSource.transaction(async (manager) => {
      await this.users.setPasswordHash(user.id, passwordHash, manager);
      const revoked = await this.sessions.revokeAll(user.id, 'password_changed', this.clock.now(), {
        except: caller.sessionId,
        manager,
      });
      await this.tokens.invalidateAll(user.id, 'password_reset', manager);
      await this.mail.enqueue('password-changed', user.email, {}, { manager });
      await this.audit.record(
        'password.changed',
        { userId: user.id, meta, metadata: { sessionsRevoked: revoked } },
        manager,
      );
    });
  }

  /** Removes the user; tokens, sessions and todos go with it (FK cascades). The audit trail stays. */
  async deleteAccount(caller: AuthUser, password: string, meta: RequestMeta): Promise<void> {
    const user = await this.verifiedCaller(caller, password, meta, 'user.delete_failed');
    await this.dataSource.transaction(async (manager) => {
      await this.audit.record('user.deleted', { userId: user.id, meta }, manager);
      await this.users.delete(user.id, manager);
    });
  }

  private async verifiedCaller(
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
      throw new AppException(
        HttpStatus.UNAUTHORIZED,
        'INVALID_PASSWORD',
        'The current password is incorrect.',
      );
    }
    return user;
  }
}
