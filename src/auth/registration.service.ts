import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import { MailService, type MailTemplate } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import { normalizeEmail } from '../users/email.js';
import type { User } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher, UNUSABLE_PASSWORD_HASH } from './password-hasher.service.js';
import { PasswordPolicy } from './password.policy.js';
import { SessionsService } from './sessions.service.js';
import './account.events.js';

/**
 * Sign-up and email verification. Every outcome of register and resend answers the same way; the
 * difference is only in the mail the address's owner receives (OWASP Authentication Cheat Sheet,
 * "Authentication and Error Messages").
 *
 * The mailbox owner decides (DESIGN §5): a verification link carries the password of the
 * registration that asked for it, verifying sets it and kills every other outstanding link. So a
 * stranger who registered the address first keeps no password once its owner verifies their own.
 */
@Injectable()
export class RegistrationService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly tokens: TokensService,
    private readonly sessions: SessionsService,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly uow: UnitOfWork,
  ) {}

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
    // Checked before the email is looked at: a taken username answers 409 whether the address is
    // known or not, so the answer says nothing about the address (DESIGN §5). Usernames are public
    // handles (PATCH /users/me says the same).
    if (normalizedUsername && (await this.users.usernameTaken(normalizedUsername))) {
      throw usernameTaken();
    }
    const existing = await this.users.findByEmail(email);
    if (existing) {
      return this.registerExisting(existing, passwordHash, meta);
    }
    if (!(await this.createAccount(email, passwordHash, normalizedUsername, meta))) {
      // A concurrent registration won the insert; answer like a known address.
      const winner = await this.users.findByEmail(email);
      if (winner) {
        await this.registerExisting(winner, passwordHash, meta);
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
      throw usernameTaken();
    }
    if (user === 'email_taken') {
      return false;
    }
    await this.audit.record('user.registered', { userId: user.id, meta });
    await this.mailVerification(user, passwordHash, meta);
    this.events.publish('user.registered', { userId: user.id });
    return true;
  }

  /**
   * Uses a verification link: sets the password it carries (if any), marks the address verified and
   * kills every other outstanding link. A disabled account's link does nothing (400 TOKEN_INVALID).
   */
  async verifyEmail(token: string, meta: RequestMeta): Promise<void> {
    const userId = await this.tokens.peek('email_verification', token);
    const owner = userId === null ? null : await this.users.findById(userId);
    if (owner?.disabledAt) {
      await this.refuseDisabled(owner.id, meta);
    }
    try {
      await this.applyVerification(token, meta);
    } catch (error) {
      if (error instanceof DisabledDuringVerification) {
        // Disabled between the look and the use: the unit of work rolled back, the link is unused.
        await this.refuseDisabled(error.userId, meta);
      }
      throw error;
    }
  }

  @Transactional()
  private async applyVerification(token: string, meta: RequestMeta): Promise<void> {
    const { userId, passwordHash } = await this.tokens.consumeVerification(token);
    const user = await this.users.findById(userId);
    if (!user || user.disabledAt) {
      throw new DisabledDuringVerification(userId);
    }
    // Marked first: the row lock makes a concurrent re-registration (which voids the password and
    // issues a link only while unverified) either finish before — its link is then killed below — or
    // find the account verified.
    await this.users.markVerified(userId);
    // Every other link dies: one carrying someone else's password can no longer set it.
    await this.tokens.invalidateAll(userId, 'email_verification');
    let sessionsRevoked = 0;
    if (passwordHash !== null) {
      await this.users.setPasswordHash(userId, passwordHash);
      // Whoever signed in with the earlier password (only possible without AUTH_REQUIRE_VERIFIED_EMAIL) is out.
      sessionsRevoked = await this.sessions.revokeAll(userId, 'password_changed');
    }
    await this.audit.record('email.verified', {
      userId,
      meta,
      metadata: { credentialSet: passwordHash !== null, sessionsRevoked },
    });
    this.events.publish('user.verified', { userId });
  }

  private async refuseDisabled(userId: number, meta: RequestMeta): Promise<never> {
    await this.audit.record('email.verify_refused', {
      userId,
      outcome: 'failure',
      meta,
      metadata: { reason: 'account_disabled' },
    });
    throw new AppException(
      HttpStatus.BAD_REQUEST,
      'TOKEN_INVALID',
      'This link is not valid; ask for a new one.',
    );
  }

  async resendVerification(rawEmail: string, meta: RequestMeta): Promise<void> {
    const user = await this.users.findByEmail(rawEmail);
    if (!user || user.isVerified || user.disabledAt) {
      return;
    }
    await this.sendVerification(user, meta);
  }

  /** A verification mail for an unverified account, with its audit row; a resend link carries no password. */
  @Transactional()
  async sendVerification(user: User, meta: RequestMeta): Promise<void> {
    await this.mailVerification(user, null, meta);
  }

  /**
   * Queues a verification mail within the address's mail budget, in the caller's unit of work (admin
   * tools too); the link's token is issued only when the mail goes out. Audits what happened.
   */
  async mailVerification(
    user: User,
    passwordHash: string | null,
    meta: RequestMeta,
    actorUserId?: number,
  ): Promise<boolean> {
    const queued = await this.mail.enqueue('verify-email', user.email, async () => ({
      token: await this.tokens.issue('email_verification', user.id, passwordHash),
    }));
    await this.auditMail(queued, 'email.verification_sent', 'verify-email', user.id, meta, actorUserId);
    return queued;
  }

  /**
   * Unverified: a fresh verification mail whose link carries this registration's password. Verified:
   * an "account exists" notice, within the address's mail budget (one per ACCOUNT_EXISTS_MAIL_WINDOW,
   * reserved atomically, so concurrent registrations cannot both send one). Never a changed password.
   */
  @Transactional()
  private async registerExisting(user: User, passwordHash: string, meta: RequestMeta): Promise<void> {
    // Two registrations now claim the address: the account's own password (the first one's) is
    // nobody's to keep. Only a registration's link can set one; a resend link leaves the owner to
    // reset it, so a stranger who registered first never keeps a way in. `user` was read before this
    // unit of work: the update is conditional, so an owner who verified meanwhile keeps the password.
    if (!user.isVerified && (await this.users.voidUnverifiedPassword(user.id, UNUSABLE_PASSWORD_HASH))) {
      const mailed = !user.disabledAt && (await this.mailVerification(user, passwordHash, meta));
      await this.audit.record('user.register_existing', {
        userId: user.id,
        meta,
        metadata: { verified: false, mailed },
      });
      return;
    }
    const mailed = await this.mail.enqueue('account-exists', user.email, {});
    await this.auditMail(mailed, null, 'account-exists', user.id, meta);
    await this.audit.record('user.register_existing', {
      userId: user.id,
      meta,
      metadata: { verified: true, mailed },
    });
  }

  /** `sent` (if named) when the mail was queued, `mail.suppressed` when the recipient's budget was spent. */
  private async auditMail(
    queued: boolean,
    sent: string | null,
    template: MailTemplate,
    userId: number,
    meta: RequestMeta,
    actorUserId?: number,
  ): Promise<void> {
    if (queued && sent) {
      await this.audit.record(sent, { userId, actorUserId, meta });
    } else if (!queued) {
      await this.audit.record('mail.suppressed', {
        userId,
        actorUserId,
        outcome: 'failure',
        meta,
        metadata: { template, reason: 'budget' },
      });
    }
  }
}

/** Internal: rolls the verification's unit of work back when the account turned out disabled. */
class DisabledDuringVerification extends Error {
  constructor(readonly userId: number) {
    super('account disabled');
  }
}

function usernameTaken(): AppException {
  return new AppException(HttpStatus.CONFLICT, 'USERNAME_TAKEN', 'That username is already taken.');
}
