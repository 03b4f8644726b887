import { Injectable } from '@nestjs/common';
import { type FindOptionsWhere, In, IsNull, LessThan, Not } from 'typeorm';
import { type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { isUniqueViolation } from '../database/driver-errors.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { normalizeEmail } from './email.js';
import { User } from './user.entity.js';

/** The users table, by intent. The password hash is selected only by the two `WithHash` reads (DESIGN §7). */
@Injectable()
export class UsersRepository extends EntityRepository<User> {
  constructor(uow: UnitOfWork) {
    super(uow, User);
  }

  /** By primary key, in hand-written SQL: every profile read (GET /users/me) runs this. */
  async findById(id: number): Promise<User | null> {
    const { selectList, table } = this.raw;
    const [user] = await this.selectRaw(`SELECT ${selectList} FROM ${table} WHERE ${this.column('id')} = ?`, [
      id,
    ]);
    return user ?? null;
  }

  findByEmail(email: string): Promise<User | null> {
    return this.repo.findOneBy({ email: normalizeEmail(email) });
  }

  usernameTaken(username: string): Promise<boolean> {
    return this.repo.existsBy({ username });
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

  /**
   * Sets the username while the account exists and is not disabled, in one conditional UPDATE (it
   * reads the latest committed row): false once a deletion or a disable committed, which also
   * revoked the session the request was authenticated by.
   */
  async setUsername(id: number, username: string | null): Promise<boolean> {
    const result = await this.updateWhere({ id, disabledAt: IsNull() }, { username });
    return (result.affected ?? 0) > 0;
  }

  async update(
    id: number,
    changes: Partial<Pick<User, 'isVerified' | 'passwordHash' | 'disabledAt' | 'role'>>,
  ): Promise<void> {
    await this.updateWhere({ id }, changes);
  }

  /**
   * Records a sign-in (and stores `rehashed`, an upgraded hash of the same password) in one conditional
   * UPDATE, only while the password hash is still `checkedHash`, the one the sign-in's proof was
   * checked against, the account is not disabled and — for a sign-in by password alone (`withoutTotp`)
   * — TOTP is still off; false if any of that changed, or the account went, since. The UPDATE reads
   * the latest committed row and holds it until the unit of work ends, so a password change, a
   * disable or a TOTP confirmation either committed first (and this refuses) or waits, and then
   * revokes (or stands over) the session this opens.
   */
  async recordLogin(
    id: number,
    at: Date,
    checkedHash: string,
    rehashed: string | null,
    withoutTotp = false,
  ): Promise<boolean> {
    const result = await this.updateWhere(
      { ...stillAsChecked(id, checkedHash), ...(withoutTotp ? { totpEnabledAt: IsNull() } : {}) },
      { lastLoginAt: at, ...(rehashed === null ? {} : { passwordHash: rehashed }) },
    );
    return (result.affected ?? 0) > 0;
  }

  /**
   * Holds the account's row for the open unit of work while its password hash is still `checkedHash`
   * and it is not disabled; false if either changed (or the account went) since it was checked.
   */
  holdIfPasswordIs(id: number, checkedHash: string): Promise<boolean> {
    return this.hold(stillAsChecked(id, checkedHash));
  }

  /** Holds the account's row for the open unit of work; false if the account is gone. */
  holdAccount(id: number): Promise<boolean> {
    return this.hold({ id });
  }

  /**
   * Holds the row matching `where` until the unit of work ends: a no-op UPDATE rather than
   * `SELECT … FOR UPDATE`, which SQLite has no syntax for. It reads the latest committed row (a change
   * that committed meanwhile is what it matches, one that comes after waits), and mysql2 counts matched
   * rows (FOUND_ROWS). updated_at is set to itself, or `updateWhere` would stamp the row as changed.
   */
  private async hold(where: FindOptionsWhere<User>): Promise<boolean> {
    const result = await this.updateWhere(where, { updatedAt: () => this.column('updatedAt') });
    return (result.affected ?? 0) > 0;
  }

  /**
   * Sets the password hash only while the account is unverified, in one conditional UPDATE (it reads
   * the latest committed row, so a verification that committed meanwhile wins); true if it did.
   */
  async updateHashIfUnverified(id: number, passwordHash: string): Promise<boolean> {
    const result = await this.updateWhere({ id, isVerified: false }, { passwordHash });
    return (result.affected ?? 0) > 0;
  }

  /** Sets disabled_at unless already set (the first disable time is the one kept). */
  async disable(id: number, at: Date): Promise<void> {
    await this.updateWhere({ id, disabledAt: IsNull() }, { disabledAt: at });
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

  /** Ids of accounts still unverified that were created before `before`, oldest first. */
  async findUnverifiedCreatedBefore(before: Date, limit: number): Promise<number[]> {
    const rows = await this.repo.find({
      where: { isVerified: false, createdAt: LessThan(before) },
      select: { id: true },
      order: { id: 'ASC' },
      take: limit,
    });
    return rows.map((row) => row.id);
  }

  /** Deletes these accounts if they are still unverified (one may have verified meanwhile). */
  async deleteUnverified(ids: number[]): Promise<void> {
    if (ids.length > 0) {
      await this.repo.delete({ id: In(ids), isVerified: false });
    }
  }

  /** The account with its TOTP state (sealed secrets, last step), which no other read loads, and its password hash. */
  findByIdWithTotp(id: number): Promise<User | null> {
    return this.repo
      .createQueryBuilder('user')
      .addSelect(['user.passwordHash', 'user.totpSecret', 'user.totpPendingSecret', 'user.totpLastStep'])
      .where('user.id = :id', { id })
      .getOne();
  }

  async setTotpPending(id: number, sealed: string): Promise<void> {
    await this.updateWhere({ id }, { totpPendingSecret: sealed });
  }

  /**
   * Makes the pending secret the active one, only if it is still the one the code was checked
   * against (a set-up that raced in has replaced it): true if it did.
   */
  async activateTotp(id: number, pending: string, step: number, at: Date): Promise<boolean> {
    const result = await this.updateWhere(
      { id, totpPendingSecret: pending },
      { totpSecret: pending, totpPendingSecret: null, totpEnabledAt: at, totpLastStep: step },
    );
    return (result.affected ?? 0) > 0;
  }

  /**
   * Records that a code of time step `step` was accepted, in one conditional UPDATE: false if this
   * step (or a later one) was accepted already, so of two concurrent uses of a code one wins.
   */
  async claimTotpStep(id: number, step: number): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ totpLastStep: step, ...this.stamp })
      .where('id = :id', { id })
      .andWhere('totp_enabled_at IS NOT NULL')
      .andWhere('(totp_last_step IS NULL OR totp_last_step < :step)', { step })
      .execute();
    return result.affected === 1;
  }

  /**
   * Turns TOTP off: the active and pending secrets go. True if it was on when this ran: each
   * UPDATE reads the latest committed row, so of a disable and an operator's reset that race, only
   * one finds it on (and mails and audits it), and a reset that read the account before the owner
   * confirmed TOTP still finds it on.
   */
  async clearTotp(id: number): Promise<boolean> {
    const result = await this.updateWhere(
      { id, totpEnabledAt: Not(IsNull()) },
      { totpSecret: null, totpPendingSecret: null, totpEnabledAt: null, totpLastStep: null },
    );
    if ((result.affected ?? 0) > 0) {
      return true;
    }
    // Off already: only a pending secret (a set-up never confirmed) can be left. Conditional too, so
    // a confirmation that committed in between is never undone without the answer above.
    await this.updateWhere(
      { id, totpEnabledAt: IsNull(), totpPendingSecret: Not(IsNull()) },
      { totpPendingSecret: null },
    );
    return false;
  }

  async delete(id: number): Promise<void> {
    await this.repo.delete({ id });
  }
}

/** The account's row while it still has the password hash a proof was checked against and is not disabled. */
function stillAsChecked(id: number, checkedHash: string): FindOptionsWhere<User> {
  return { id, passwordHash: checkedHash, disabledAt: IsNull() };
}
