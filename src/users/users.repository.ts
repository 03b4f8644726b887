import { Injectable } from '@nestjs/common';
import { IsNull, QueryFailedError } from 'typeorm';
import { type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { isMysqlFamily } from '../database/data-source.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
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

/** The users table, by intent. The password hash is selected only by the two `WithHash` reads (DESIGN §7). */
@Injectable()
export class UsersRepository extends EntityRepository<User> {
  constructor(uow: UnitOfWork) {
    super(uow, User);
  }

  findById(id: number): Promise<User | null> {
    return this.repo.findOneBy({ id });
  }

  findByEmail(email: string): Promise<User | null> {
    return this.repo.findOneBy({ email: normalizeEmail(email) });
  }

  findByEmailWithHash(email: string): Promise<User | null> {
    return this.repo
      .createQueryBuilder('user')
      .addSelect('user.passwordHash')
      .where('user.email = :email', { email: normalizeEmail(email) })
      .getOne();
  }

  findByIdWithHash(id: number): Promise<User | null> {
    return this.repo
      .createQueryBuilder('user')
      .addSelect('user.passwordHash')
      .where('user.id = :id', { id })
      .getOne();
  }

  /** Inserts an unverified user, or says which unique field was taken (a concurrent registration). */
  async insertUnverified(
    email: string,
    passwordHash: string,
    username: string | null,
  ): Promise<User | 'email_taken' | 'username_taken'> {
    try {
      const { identifiers } = await this.repo.insert({
        email: normalizeEmail(email),
        passwordHash,
        username,
      });
      return await this.repo.findOneByOrFail({ id: Number(identifiers[0].id) });
    } catch (error) {
      if (isUniqueViolation(error)) {
        // Both MySQL ("for key 'UQ_users_username'") and SQLite ("users.username") name the column.
        return /username/i.test((error as Error).message) ? 'username_taken' : 'email_taken';
      }
      throw error;
    }
  }

  async update(
    id: number,
    changes: Partial<Pick<User, 'isVerified' | 'passwordHash' | 'username' | 'disabledAt' | 'role'>>,
  ): Promise<void> {
    await this.repo.update({ id }, changes);
  }

  async recordLogin(id: number, at: Date): Promise<void> {
    await this.repo.update(
      { id },
      { lastLoginAt: at, failedLoginCount: 0, lockoutCount: 0, lockedUntil: null },
    );
  }

  /**
   * Counts a login attempt before its password is checked, in one locked read-and-increment, so
   * parallel guesses cannot all slip past the threshold. Null when the account is locked at `now`;
   * otherwise the attempts since the last success, this one included. Call inside a unit of work.
   */
  async reserveLoginAttempt(id: number, now: Date): Promise<number | null> {
    // The row lock makes read-and-increment one step on MySQL; SQLite transactions are serialized.
    const row = await this.repo.findOne({
      where: { id },
      select: { id: true, failedLoginCount: true, lockedUntil: true },
      ...(isMysqlFamily(this.manager.connection) ? { lock: { mode: 'pessimistic_write' as const } } : {}),
    });
    if (!row || (row.lockedUntil && row.lockedUntil > now)) {
      return null;
    }
    const attempts = row.failedLoginCount + 1;
    await this.repo.update({ id }, { failedLoginCount: attempts });
    return attempts;
  }

  async clearFailedLogins(id: number): Promise<void> {
    await this.repo.update({ id }, { failedLoginCount: 0 });
  }

  /** Locks the account unless it already is; true when this call locked it. */
  async lock(id: number, until: Date, now: Date): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ lockedUntil: until, failedLoginCount: 0, lockoutCount: () => 'lockout_count + 1' })
      .where('id = :id AND (locked_until IS NULL OR locked_until <= :now)', { id, now })
      .execute();
    return result.affected === 1;
  }

  async unlock(id: number): Promise<void> {
    await this.repo.update({ id }, { lockedUntil: null, failedLoginCount: 0, lockoutCount: 0 });
  }

  /** Sets disabled_at unless already set (the first disable time is the one kept). */
  async disable(id: number, at: Date): Promise<void> {
    await this.repo.update({ id, disabledAt: IsNull() }, { disabledAt: at });
  }

  /** Newest accounts first; with a prefix, only emails starting with it (served by UQ_users_email). */
  search(emailPrefix: string | undefined, page: PageQueryDto): Promise<Page<User>> {
    const query = this.repo.createQueryBuilder('user');
    if (emailPrefix) {
      // LIKE's wildcards and its escape character are escaped with '!' (SQLite has no default escape).
      query.where("user.email LIKE :pattern ESCAPE '!'", {
        pattern: `${normalizeEmail(emailPrefix).replace(/[!%_]/g, (c) => `!${c}`)}%`,
      });
    }
    return paginate(query, page);
  }

  async delete(id: number): Promise<void> {
    await this.repo.delete({ id });
  }
}
