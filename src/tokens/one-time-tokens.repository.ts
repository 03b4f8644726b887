import { Injectable } from '@nestjs/common';
import type { Repository } from 'typeorm';
import { UnitOfWork } from '../database/unit-of-work.js';
import { EmailVerificationToken, MfaLoginToken, type PasswordResetToken } from './one-time-token.entity.js';
import { TOKEN_PURPOSES, type TokenPurpose } from './token-purposes.js';

type OneTimeToken = EmailVerificationToken | PasswordResetToken | MfaLoginToken;

export interface TokenState {
  userId: number;
  usedAt: Date | null;
  expirationDate: Date;
}

/** The one-time token tables (one per purpose, same shape), by intent; joins the open unit of work. */
@Injectable()
export class OneTimeTokensRepository {
  constructor(private readonly uow: UnitOfWork) {}

  async insert(
    purpose: TokenPurpose,
    row: Pick<OneTimeToken, 'userId' | 'tokenHash' | 'expirationDate' | 'createdAt'>,
    passwordHash: string | null = null,
  ): Promise<void> {
    // Only a verification link carries a password (the registration's hash); the column is its table's.
    const carried = purpose === 'email_verification' ? { passwordHash } : {};
    await this.table(purpose).insert({ ...row, ...carried, usedAt: null });
  }

  /** The password hash a verification link carries, or null (a resend link, or no such token). */
  async carriedPasswordHash(tokenHash: string): Promise<string | null> {
    const row = await this.uow.tx.getRepository(EmailVerificationToken).findOne({
      where: { tokenHash },
      select: { tokenId: true, passwordHash: true },
    });
    return row?.passwordHash ?? null;
  }

  /** The one conditional UPDATE that burns a token: of N concurrent uses exactly one affects a row. */
  async markUsed(purpose: TokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    const result = await this.table(purpose)
      .createQueryBuilder()
      .update()
      .set({ usedAt: now })
      .where('token_hash = :tokenHash', { tokenHash })
      .andWhere('used_at IS NULL')
      .andWhere('expiration_date > :now', { now })
      .execute();
    return result.affected === 1;
  }

  /**
   * Spends one attempt of an mfaToken in one conditional UPDATE: of N concurrent guesses at most
   * `max` get through, and none once the token is used, expired or out of attempts.
   */
  async spendMfaAttempt(tokenHash: string, now: Date, max: number): Promise<boolean> {
    const result = await this.uow.tx
      .getRepository(MfaLoginToken)
      .createQueryBuilder()
      .update()
      .set({ attempts: () => 'attempts + 1' })
      .where('token_hash = :tokenHash', { tokenHash })
      .andWhere('used_at IS NULL')
      .andWhere('expiration_date > :now', { now })
      .andWhere('attempts < :max', { max })
      .execute();
    return result.affected === 1;
  }

  findByHash(purpose: TokenPurpose, tokenHash: string): Promise<TokenState | null> {
    return this.table(purpose).findOne({
      where: { tokenHash },
      select: { userId: true, usedAt: true, expirationDate: true },
    });
  }

  /** Deletes the user's unused tokens of a purpose. */
  async deleteUnused(purpose: TokenPurpose, userId: number): Promise<void> {
    await this.table(purpose)
      .createQueryBuilder()
      .delete()
      .where('user_id = :userId', { userId })
      .andWhere('used_at IS NULL')
      .execute();
  }

  /** Deletes used and expired rows of a purpose; returns how many went. */
  async deleteFinished(purpose: TokenPurpose, now: Date): Promise<number> {
    const result = await this.table(purpose)
      .createQueryBuilder()
      .delete()
      .where('used_at IS NOT NULL')
      .orWhere('expiration_date <= :now', { now })
      .execute();
    return result.affected ?? 0;
  }

  private table(purpose: TokenPurpose): Repository<OneTimeToken> {
    return this.uow.tx.getRepository<OneTimeToken>(TOKEN_PURPOSES[purpose].entity);
  }
}
