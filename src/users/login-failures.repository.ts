import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { In, LessThan } from 'typeorm';
import { isMysqlFamily } from '../database/data-source.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { normalizeEmail } from './email.js';
import { LoginFailure } from './login-failure.entity.js';

/** The key failed sign-ins are counted under: the SHA-256 of the normalized address, account or not. */
export function loginKeyOf(email: string): string {
  return createHash('sha256').update(normalizeEmail(email)).digest('hex');
}

/** The login_failures table, by intent. */
@Injectable()
export class LoginFailuresRepository extends EntityRepository<LoginFailure> {
  constructor(uow: UnitOfWork) {
    super(uow, LoginFailure);
  }

  /** Every counter of these addresses (an admin's page of accounts). */
  findAll(emailHashes: readonly string[]): Promise<LoginFailure[]> {
    return emailHashes.length === 0
      ? Promise.resolve([])
      : this.repo.findBy({ emailHash: In([...emailHashes]) });
  }

  /**
   * Makes sure the counters exist, outside any transaction: on MySQL an INSERT IGNORE that meets an
   * existing row takes a shared lock, and two of them upgrading to the exclusive lock of
   * `lockForUpdate` in one transaction would deadlock.
   */
  async ensure(emailHash: string, clients: readonly string[], now: Date): Promise<void> {
    await this.repo
      .createQueryBuilder()
      .insert()
      .values(
        clients.map((client) => ({
          emailHash,
          client,
          failures: 0,
          inFlight: 0,
          lockedUntil: null,
          updatedAt: now,
        })),
      )
      .orIgnore()
      .execute();
  }

  /** The counters, row-locked until the unit of work ends (SQLite serializes write transactions). */
  lockForUpdate(emailHash: string, clients: readonly string[]): Promise<LoginFailure[]> {
    return this.repo.find({
      where: { emailHash, client: In([...clients]) },
      // One order for every caller, so two transactions never wait on each other's second row.
      order: { client: 'ASC' },
      ...(isMysqlFamily(this.manager.connection) ? { lock: { mode: 'pessimistic_write' as const } } : {}),
    });
  }

  async update(
    row: Pick<LoginFailure, 'emailHash' | 'client' | 'failures' | 'inFlight' | 'lockedUntil' | 'updatedAt'>,
  ) {
    const { emailHash, client, ...changes } = row;
    await this.updateWhere({ emailHash, client }, changes);
  }

  async delete(emailHash: string, clients?: readonly string[]): Promise<number> {
    const result = await this.repo.delete(clients ? { emailHash, client: In([...clients]) } : { emailHash });
    return result.affected ?? 0;
  }

  /** Counters untouched since `before` whose lock (if any) ended before it too. */
  async purgeIdle(before: Date): Promise<number> {
    const result = await this.repo
      .createQueryBuilder()
      .delete()
      .where({ updatedAt: LessThan(before) })
      .andWhere('(locked_until IS NULL OR locked_until < :before)', { before })
      .execute();
    return result.affected ?? 0;
  }
}
