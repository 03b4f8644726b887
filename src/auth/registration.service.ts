import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { MailService } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import { normalizeEmail } from '../users/email.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { PasswordPolicy } from './password.policy.js';

/**
 * Sign-up and email verification. Every outcome of register and resend answers the same way; the
 * difference is only in the mail the address's owner receives (OWASP Authentication Cheat Sheet,
 * "Authentication and Error Messages").
 */
@Injectable()
export class RegistrationService {
  private readonly accountExistsWindowMs: number;

  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly tokens: TokensService,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<Config, true>,
  ) {
    this.accountExistsWindowMs = config.getOrThrow('auth', { infer: true }).accountExistsMailWindowMs;
  }

  async register(
    rawEmail: string,
    password: string,
    username: string | undefined,
    meta: RequestMeta,
  ): Promise<void> {
    const email = normalizeEmail(rawEmail);
    const normalizedUsername = username ? username.toLowerCase() : null;
    this.policy.assertAcceptable(password, { email, username: normalizedUsername });
    // Hashed whatever happens next, so a known address costs the same time as a new one.
    const passwordHash = await this.hasher.hash(password);
    const existing = await this.users.findByEmail(email);
    if (existing) {
      return this.registerExisting(existing, meta);
    }
    const created = await this.dataSource.transaction(async (manager) => {
      const user = await this.users.createUnverified(email, passwordHash, normalizedUsername, manager);
      if (user === 'username_taken') {
        // Usernames are public handles (PATCH /users/me says the same); unlike emails they may be refused.
        throw new AppException(HttpStatus.CONFLICT, 'USERNAME_TAKEN', 'That username is already taken.');
      }
      if (user === 'email_taken') {
        return null;
      }
      await this.issueVerification(user, manager);
      await this.audit.record('user.registered', { userId: user.id, meta }, manager);
      await this.audit.record('email.verification_sent', { userId: user.id, meta }, manager);
      return user;
    });
    if (!created) {
      // A concurrent registration won the insert; answer like a known address.
      const winner = await this.users.findByEmail(email);
      if (winner) {
        await this.registerExisting(winner, meta);
      }
    }
  }

  async verifyEmail(token: string, meta: RequestMeta): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const userId = await this.tokens.consume('email_verification', token, manager);
      await this.users.markVerified(userId, manager);
      await this.audit.record('email.verified', { userId, meta }, manager);
    });
  }

  async resendVerification(rawEmail: string, meta: RequestMeta): Promise<void> {
    const user = await this.users.findByEmail(rawEmail);
    if (!user || user.isVerified || user.disabledAt) {
      return;
    }
    await this.sendVerification(user, meta);
  }

  /** A verification mail for an unverified account, with its audit row. */
  async sendVerification(user: User, meta: RequestMeta): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await this.issueVerification(user, manager);
      await this.audit.record('email.verification_sent', { userId: user.id, meta }, manager);
    });
  }

  /** Issues a verification token and queues its mail inside the caller's transaction (admin tools too). */
  async issueVerification(user: User, manager: EntityManager): Promise<void> {
    const token = await this.tokens.issue('email_verification', user.id, manager);
    await this.mail.enqueue('verify-email', user.email, { token }, { manager });
  }

  /**
   * Unverified: a fresh verification mail. Verified: an "account exists" notice, at most one per
   * address per window, so the endpoint cannot be used to flood someone's inbox. Never a new password.
   */
  private async registerExisting(user: User, meta: RequestMeta): Promise<void> {
    if (!user.isVerified) {
      await this.dataSource.transaction(async (manager) => {
        if (!user.disabledAt) {
          await this.issueVerification(user, manager);
          await this.audit.record('email.verification_sent', { userId: user.id, meta }, manager);
        }
        await this.audit.record(
          'user.register_existing',
          { userId: user.id, meta, metadata: { verified: false } },
          manager,
        );
      });
      return;
    }
    const since = new Date(this.clock.now().getTime() - this.accountExistsWindowMs);
    const recentlyMailed = await this.audit.hasRecent('user.register_existing', user.id, since, {
      mailed: true,
    });
    await this.dataSource.transaction(async (manager) => {
      if (!recentlyMailed) {
        await this.mail.enqueue('account-exists', user.email, {}, { manager });
      }
      await this.audit.record(
        'user.register_existing',
        { userId: user.id, meta, metadata: { verified: true, mailed: !recentlyMailed } },
        manager,
      );
    });
  }
}
