import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import type { RequestMeta } from '../common/request-meta.js';
import { MailService } from '../mail/mail.service.js';
import { TokensService } from '../tokens/tokens.service.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { PasswordPolicy } from './password.policy.js';
import type { SessionRevokedReason } from './session.entity.js';
import { SessionsRepository } from './sessions.repository.js';

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
 * told by mail, and the event is audited, all in the caller's transaction.
 */
@Injectable()
export class PasswordChangeService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly tokens: TokensService,
    private readonly sessions: SessionsRepository,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
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
    manager: EntityManager,
  ): Promise<void> {
    await this.users.setPasswordHash(user.id, passwordHash, manager);
    const revoked = await this.sessions.revokeAll(user.id, kind.reason, this.clock.now(), {
      except: kind.keepSessionId,
    });
    await this.tokens.invalidateAll(user.id, 'password_reset', manager);
    await this.mail.enqueue('password-changed', user.email, {}, { manager });
    await this.audit.record(
      kind.event,
      { userId: user.id, meta: kind.meta, metadata: { sessionsRevoked: revoked } },
      manager,
    );
  }
}
