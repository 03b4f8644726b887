import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import { MailService } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import { normalizeEmail } from '../users/email.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { PasswordPolicy } from './password.policy.js';
import './account.events.js';

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
    private readonly events: DomainEvents,
    private readonly uow: UnitOfWork,
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
    if (!(await this.createAccount(email, passwordHash, normalizedUsername, meta))) {
      // A concurrent registration won the insert; answer like a known address.
      const winner = await this.users.findByEmail(email);
      if (winner) {
        await this.registerExisting(winner, meta);
      }
    }
  }

  /** The new account, its verification mail and audit rows in one unit of work; false if the email was taken meanwhile. */
  @Transactional()
  private async createAccount(
    email: string,
    passwordHash: string,
    username: string | null,
    meta: RequestMeta,
  ): Promise<boolean> {
    const user = await this.users.createUnverified(email, passwordHash, username);
    if (user === 'username_taken') {
      // Usernames are public handles (PATCH /users/me says the same); unlike emails they may be refused.
      throw new AppException(HttpStatus.CONFLICT, 'USERNAME_TAKEN', 'That username is already taken.');
    }
    if (user === 'email_taken') {
      return false;
    }
    await this.issueVerification(user);
    await this.audit.record('user.registered', { userId: user.id, meta });
    await this.audit.record('email.verification_sent', { userId: user.id, meta });
    this.events.publish('user.registered', { userId: user.id });
    return true;
  }

  @Transactional()
  async verifyEmail(token: string, meta: RequestMeta): Promise<void> {
    const userId = await this.tokens.consume('email_verification', token);
    await this.users.markVerified(userId);
    await this.audit.record('email.verified', { userId, meta });
    this.events.publish('user.verified', { userId });
  }

  async resendVerification(rawEmail: string, meta: RequestMeta): Promise<void> {
    const user = await this.users.findByEmail(rawEmail);
    if (!user || user.isVerified || user.disabledAt) {
      return;
    }
    await this.sendVerification(user, meta);
  }

  /** A verification mail for an unverified account, with its audit row. */
  @Transactional()
  async sendVerification(user: User, meta: RequestMeta): Promise<void> {
    await this.issueVerification(user);
    await this.audit.record('email.verification_sent', { userId: user.id, meta });
  }

  /** Issues a verification token and queues its mail in the caller's unit of work (admin tools too). */
  async issueVerification(user: User): Promise<void> {
    const token = await this.tokens.issue('email_verification', user.id);
    await this.mail.enqueue('verify-email', user.email, { token });
  }

  /**
   * Unverified: a fresh verification mail. Verified: an "account exists" notice, at most one per
   * address per window, so the endpoint cannot be used to flood someone's inbox. Never a new password.
   */
  @Transactional()
  private async registerExisting(user: User, meta: RequestMeta): Promise<void> {
    if (!user.isVerified) {
      if (!user.disabledAt) {
        await this.issueVerification(user);
        await this.audit.record('email.verification_sent', { userId: user.id, meta });
      }
      await this.audit.record('user.register_existing', {
        userId: user.id,
        meta,
        metadata: { verified: false },
      });
      return;
    }
    const since = new Date(this.clock.now().getTime() - this.accountExistsWindowMs);
    const recentlyMailed = await this.audit.hasRecent('user.register_existing', user.id, since, {
      mailed: true,
    });
    if (!recentlyMailed) {
      await this.mail.enqueue('account-exists', user.email, {});
    }
    await this.audit.record('user.register_existing', {
      userId: user.id,
      meta,
      metadata: { verified: true, mailed: !recentlyMailed },
    });
  }
}
