import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { unauthenticated } from '../common/auth/unauthenticated.js';
import { type Page, type PageQueryDto } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { normalizeEmail } from './email.js';
import { LoginLockout } from './login-lockout.service.js';
import type { User } from './user.entity.js';
import { isUniqueViolation } from '../database/driver-errors.js';
import { UsersRepository } from './users.repository.js';

/**
 * What other modules may do with accounts. Every method joins the caller's unit of work, so auth and
 * admin compose these with their own writes without passing anything along.
 */
@Injectable()
export class UsersService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersRepository,
    private readonly audit: AuditService,
    private readonly lockout: LoginLockout,
  ) {}

  findById(id: number): Promise<User | null> {
    return this.users.findById(id);
  }

  findByEmail(email: string): Promise<User | null> {
    return this.users.findByEmail(email);
  }

  usernameTaken(username: string): Promise<boolean> {
    return this.users.usernameTaken(username.toLowerCase());
  }

  /** The password hash is not selected by default (DESIGN §7); only these two load it. */
  findByEmailWithHash(email: string): Promise<User | null> {
    return this.users.findByEmailWithHash(email);
  }

  /** Whether the account is disabled now (false once it is gone): why a proof that no longer stands was refused. */
  async isDisabled(id: number): Promise<boolean> {
    return Boolean((await this.users.findById(id))?.disabledAt);
  }

  findByIdWithHash(id: number): Promise<User | null> {
    return this.users.findByIdWithHash(id);
  }

  /** Inserts an unverified user, or says which unique field was taken (a concurrent registration). */
  createUnverified(email: string, passwordHash: string, username: string | null) {
    return this.users.insertUnverified(email, passwordHash, username);
  }

  markVerified(id: number): Promise<void> {
    return this.users.update(id, { isVerified: true });
  }

  setPasswordHash(id: number, passwordHash: string): Promise<void> {
    return this.users.update(id, { passwordHash });
  }

  /** Voids the password of a still-unverified account; false if it was verified meanwhile. */
  voidUnverifiedPassword(id: number, unusableHash: string): Promise<boolean> {
    return this.users.updateHashIfUnverified(id, unusableHash);
  }

  /** See UsersRepository.recordLogin: false when the password changed since `checkedHash` was checked. */
  recordLogin(
    id: number,
    at: Date,
    checkedHash: string,
    rehashed: string | null = null,
    withoutTotp = false,
  ): Promise<boolean> {
    return this.users.recordLogin(id, at, checkedHash, rehashed, withoutTotp);
  }

  /** See UsersRepository.holdIfPasswordIs. */
  holdIfPasswordIs(id: number, checkedHash: string): Promise<boolean> {
    return this.users.holdIfPasswordIs(id, checkedHash);
  }

  /** See UsersRepository.holdAccount. */
  holdAccount(id: number): Promise<boolean> {
    return this.users.holdAccount(id);
  }

  /** Ends every brute-force lock and failure count on the account's address; null if no such account. */
  async unlock(id: number): Promise<number | null> {
    const user = await this.users.findById(id);
    return user ? this.lockout.unlock(user.email) : null;
  }

  /**
   * Changes the username. An account deleted or disabled after the request was authenticated (both
   * revoke its sessions) is not written to: 401 UNAUTHENTICATED, as the next request would answer.
   * A sign-out that commits meanwhile does not stop it: like every request, it was authenticated by
   * the session check when it began.
   */
  @Transactional()
  async updateUsername(user: { id: number }, username: string | null, meta: RequestMeta): Promise<User> {
    let updated: boolean;
    try {
      updated = await this.users.setUsername(user.id, username === null ? null : username.toLowerCase());
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AppException(HttpStatus.CONFLICT, 'USERNAME_TAKEN', 'That username is already taken.');
      }
      throw error;
    }
    if (!updated) {
      throw unauthenticated();
    }
    await this.audit.record('user.updated', { userId: user.id, meta, metadata: { fields: ['username'] } });
    return (await this.users.findById(user.id)) as User;
  }

  /**
   * Grants the admin role (`npm run cli -- users:promote <email>`, how the first operator is made).
   * Only a verified account: an address whose owner never proved it may belong to someone else who
   * registered it first (DESIGN §5). Returns what to tell the operator; throws when it cannot.
   */
  @Transactional()
  async promote(rawEmail: string): Promise<string> {
    const user = await this.users.findByEmail(rawEmail);
    if (!user) {
      throw new Error(`No account has the email ${normalizeEmail(rawEmail)}.`);
    }
    if (!user.isVerified) {
      throw new Error(
        `${user.email} has not verified its email address; only verified accounts can be promoted.`,
      );
    }
    if (user.role === 'admin') {
      return `${user.email} is already an administrator.`;
    }
    await this.users.update(user.id, { role: 'admin' });
    await this.audit.record('user.promoted', { userId: user.id, metadata: { via: 'cli', role: 'admin' } });
    return `${user.email} is now an administrator.`;
  }

  search(emailPrefix: string | undefined, page: PageQueryDto): Promise<Page<User>> {
    return this.users.search(emailPrefix, page);
  }

  disable(id: number, at: Date): Promise<void> {
    return this.users.disable(id, at);
  }

  enable(id: number): Promise<void> {
    return this.users.update(id, { disabledAt: null });
  }

  delete(id: number): Promise<void> {
    return this.users.delete(id);
  }

  /** The TOTP second factor's state on the account (DESIGN §10); only auth reads the sealed secrets. */
  findByIdWithTotp(id: number): Promise<User | null> {
    return this.users.findByIdWithTotp(id);
  }

  setTotpPending(id: number, sealed: string): Promise<void> {
    return this.users.setTotpPending(id, sealed);
  }

  activateTotp(id: number, pending: string, step: number, at: Date): Promise<boolean> {
    return this.users.activateTotp(id, pending, step, at);
  }

  claimTotpStep(id: number, step: number): Promise<boolean> {
    return this.users.claimTotpStep(id, step);
  }

  clearTotp(id: number): Promise<boolean> {
    return this.users.clearTotp(id);
  }
}
