import { HttpStatus, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { type EntityManager, IsNull, QueryFailedError, type Repository } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { isMysqlFamily } from '../database/data-source.js';
import type { RequestMeta } from '../common/request-meta.js';
import { type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import { normalizeEmail } from './email.js';
import { User } from './user.entity.js';

export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) {
    return false;
  }
  const driverError = error.driverError as { code?: string; errno?: number } | undefined;
  return (
    driverError?.code === 'ER_DUP_ENTRY' ||
    driverError?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    driverError?.errno === 1062
  );
}

/**
 * The users table, by intent. Every method takes an optional EntityManager so callers can put the
 * change in their own transaction.
 */
@Injectable()
export class UsersService {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly audit: AuditService,
  ) {}

  private repo(manager?: EntityManager): Repository<User> {
    return manager ? manager.getRepository(User) : this.users;
  }

  findById(id: number, manager?: EntityManager): Promise<User | null> {
    return this.repo(manager).findOneBy({ id });
  }

  findByEmail(email: string, manager?: EntityManager): Promise<User | null> {
    return this.repo(manager).findOneBy({ email: normalizeEmail(email) });
  }

  /** The password hash is not selected by default (DESIGN §7); only these two load it. */
  findByEmailWithHash(email: string): Promise<User | null> {
    return this.repo()
      .createQueryBuilder('user')
      .addSelect('user.passwordHash')
      .where('user.email = :email', { email: normalizeEmail(email) })
      .getOne();
  }

  findByIdWithHash(id: number, manager?: EntityManager): Promise<User | null> {
    return this.repo(manager)
      .createQueryBuilder('user')
      .addSelect('user.passwordHash')
      .where('user.id = :id', { id })
      .getOne();
  }

  /** Inserts an unverified user, or says which unique field was taken (a concurrent registration). */
  async createUnverified(
    email: string,
    passwordHash: string,
    username: string | null,
    manager: EntityManager,
  ): Promise<User | 'email_taken' | 'username_taken'> {
    try {
      const { identifiers } = await this.repo(manager).insert({
        email: normalizeEmail(email),
        passwordHash,
        username,
      });
      return await this.repo(manager).findOneByOrFail({ id: Number(identifiers[0].id) });
    } catch (error) {
      if (isUniqueViolation(error)) {
        // Both MySQL ("for key 'UQ_users_username'") and SQLite ("users.username") name the column.
        return /username/i.test((error as Error).message) ? 'username_taken' : 'email_taken';
      }
      throw error;
    }
  }

  async markVerified(id: number, manager?: EntityManager): Promise<void> {
    await this.repo(manager).update({ id }, { isVerified: true });
  }

  async setPasswordHash(id: number, passwordHash: string, manager?: EntityManager): Promise<void> {
    await this.repo(manager).update({ id }, { passwordHash });
  }

  async recordLogin(id: number, at: Date, manager?: EntityManager): Promise<void> {
    await this.repo(manager).update(
      { id },
      { lastLoginAt: at, failedLoginCount: 0, lockoutCount: 0, lockedUntil: null },
    );
  }

  /**
   * Counts a login attempt before its password is checked, in one conditional statement, so parallel
   * guesses cannot all slip past the threshold. Null when the account is locked at `now`; otherwise the
   * attempts since the last success, this one included.
   */
  async reserveLoginAttempt(id: number, now: Date): Promise<number | null> {
    const mysql = isMysqlFamily(this.users.manager.connection);
    return this.users.manager.transaction(async (manager) => {
      // The row lock makes read-and-increment one step on MySQL; SQLite transactions are serialized.
      const row = await manager.getRepository(User).findOne({
        where: { id },
        select: { id: true, failedLoginCount: true, lockedUntil: true },
        ...(mysql ? { lock: { mode: 'pessimistic_write' as const } } : {}),
      });
      if (!row || (row.lockedUntil && row.lockedUntil > now)) {
        return null;
      }
      const attempts = row.failedLoginCount + 1;
      await manager.getRepository(User).update({ id }, { failedLoginCount: attempts });
      return attempts;
    });
  }

  async clearFailedLogins(id: number): Promise<void> {
    await this.repo().update({ id }, { failedLoginCount: 0 });
  }

  /** Locks the account unless it already is; true when this call locked it. */
  async lock(id: number, until: Date, now: Date, manager?: EntityManager): Promise<boolean> {
    const result = await this.repo(manager)
      .createQueryBuilder()
      .update()
      .set({ lockedUntil: until, failedLoginCount: 0, lockoutCount: () => 'lockout_count + 1' })
      .where('id = :id AND (locked_until IS NULL OR locked_until <= :now)', { id, now })
      .execute();
    return result.affected === 1;
  }

  async unlock(id: number, manager?: EntityManager): Promise<void> {
    await this.repo(manager).update({ id }, { lockedUntil: null, failedLoginCount: 0, lockoutCount: 0 });
  }

  async updateUsername(user: { id: number }, username: string | null, meta: RequestMeta): Promise<User> {
    const normalized = username === null ? null : username.toLowerCase();
    try {
      await this.users.manager.transaction(async (manager) => {
        await this.repo(manager).update({ id: user.id }, { username: normalized });
        await this.audit.record(
          'user.updated',
          { userId: user.id, meta, metadata: { fields: ['username'] } },
          manager,
        );
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AppException(HttpStatus.CONFLICT, 'USERNAME_TAKEN', 'That username is already taken.');
      }
      throw error;
    }
    return this.users.findOneByOrFail({ id: user.id });
  }

  /** Newest accounts first; with a prefix, only emails starting with it (served by UQ_users_email). */
  search(emailPrefix: string | undefined, page: PageQueryDto): Promise<Page<User>> {
    const query = this.users.createQueryBuilder('user');
    if (emailPrefix) {
      // LIKE's wildcards and its escape character are escaped with '!' (SQLite has no default escape).
      query.where("user.email LIKE :pattern ESCAPE '!'", {
        pattern: `${normalizeEmail(emailPrefix).replace(/[!%_]/g, (c) => `!${c}`)}%`,
      });
    }
    return paginate(query, page);
  }

  /** Sets disabled_at unless already set (the first disable time is the one kept). */
  async disable(id: number, at: Date, manager?: EntityManager): Promise<void> {
    await this.repo(manager).update({ id, disabledAt: IsNull() }, { disabledAt: at });
  }

  async enable(id: number, manager?: EntityManager): Promise<void> {
    await this.repo(manager).update({ id }, { disabledAt: null });
  }

  async delete(id: number, manager: EntityManager): Promise<void> {
    await this.repo(manager).delete({ id });
  }
}
