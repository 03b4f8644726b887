import { Injectable } from '@nestjs/common';
import { IsNull } from 'typeorm';
import { EntityRepository } from '../../database/entity-repository.js';
import { UnitOfWork } from '../../database/unit-of-work.js';
import { RecoveryCode } from './recovery-code.entity.js';

/** The mfa_recovery_codes table, by intent. */
@Injectable()
export class RecoveryCodesRepository extends EntityRepository<RecoveryCode> {
  constructor(uow: UnitOfWork) {
    super(uow, RecoveryCode);
  }

  /** The account's codes become exactly these (a new set voids every earlier one, used or not). */
  async replace(userId: number, codeHashes: readonly string[], now: Date): Promise<void> {
    await this.repo.delete({ userId });
    await this.repo.insert(
      codeHashes.map((codeHash) => ({ userId, codeHash, createdAt: now, usedAt: null })),
    );
  }

  /** Burns a code in one conditional UPDATE: of N concurrent uses exactly one wins. */
  async consume(userId: number, codeHash: string, now: Date): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ usedAt: now })
      .where('user_id = :userId', { userId })
      .andWhere('code_hash = :codeHash', { codeHash })
      .andWhere('used_at IS NULL')
      .execute();
    return result.affected === 1;
  }

  countUnused(userId: number): Promise<number> {
    return this.repo.countBy({ userId, usedAt: IsNull() });
  }

  async deleteAll(userId: number): Promise<void> {
    await this.repo.delete({ userId });
  }
}
