import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import type { RequestMeta } from '../common/request-meta.js';
import { DomainEvents } from '../events/domain-events.js';
import { MailService } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { PasswordPolicy } from './password.policy.js';
import './account.events.js';
import type { SessionRevokedReason } from './session.entity.js';
import { SessionsService } from './sessions.service.js';

export interface PasswordChangeKind {
  event: 'password.changed' | 'password.reset';
  reason: SessionRevokedReason;
  /** The caller's own session, spared when they changed the password while signed in. */
  keepSessionId?: number;
  meta: RequestMeta;
}

/**
 * What setting a new password means, whichever way it happens (change while signed in, or reset by
 * link): the hash is replaced, every other session dies, outstanding reset links die, the owner is
 * told by mail, the event is audited and published, all in the caller's unit of work.
 */
@Injectable()
export class PasswordChangeService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly tokens: TokensService,
    private readonly sessions: SessionsService,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
  ) {}

  /** The policy check and the bcrypt hash, done before any transaction opens (hashing is slow). */
  async hashAcceptable(
    password: string,
    account: { email: string; username: string | null },
    field = 'password',
  ): Promise<string> {
    this.policy.assertAcceptable(password, account, field);
    return this.hasher.hash(password);
  }

  async apply(
    user: { id: number; email: string },
    passwordHash: string,
    kind: PasswordChangeKind,
  ): Promise<void> {
    await this.users.setPasswordHash(user.id, passwordHash);
    const revoked = await this.sessions.revokeAll(user.id, kind.reason, { except: kind.keepSessionId });
    await this.tokens.invalidateAll(user.id, 'password_reset');
    // An mfaToken stands for "the password was just given": one won with the old password dies too.
    await this.tokens.invalidateAll(user.id, 'mfa_login');
    await this.mail.enqueue('password-changed', user.email, {});
    await this.audit.record(kind.event, {
      userId: user.id,
      meta: kind.meta,
      metadata: { sessionsRevoked: revoked },
    });
    this.events.publish(kind.event, { userId: user.id });
  }
}
