import { Injectable } from '@nestjs/common';
import { In } from 'typeorm';
import { isMysqlFamily } from '../database/data-source.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { OutboxMessage } from './outbox-message.entity.js';
import { ERASED_PAYLOAD } from './payload-cipher.js';

export interface NewOutboxMessage {
  template: string;
  recipient: string;
  /** Sealed (sealPayload): nothing in it is readable without MAIL_PAYLOAD_KEY. */
  payload: string;
  dueAt: Date;
}

export interface OutboxStats {
  pending: number;
  dead: number;
}

/** The part of the outbox the worker uses: claim due rows, then release each claim. */
export type OutboxClaims = Pick<
  OutboxRepository,
  'claimDue' | 'markSent' | 'markFailed' | 'markDead' | 'handBack'
>;

/**
 * The mail_outbox table. A claim is a lease: claimDue() moves next_attempt_at to locked_until, so a
 * row whose worker died is simply due again once the lease runs out, with no separate recovery job.
 * The mark* methods release a claim only while its worker still holds it, and a finished row (sent
 * or dead) never keeps its payload.
 */
@Injectable()
export class OutboxRepository extends EntityRepository<OutboxMessage> {
  constructor(uow: UnitOfWork) {
    super(uow, OutboxMessage);
  }

  /** Adds a message; it commits (or rolls back) with the open unit of work. */
  async enqueue(message: NewOutboxMessage): Promise<void> {
    await this.repo.insert({
      template: message.template,
      recipient: message.recipient,
      payload: message.payload,
      status: 'pending',
      attempts: 0,
      nextAttemptAt: message.dueAt,
      createdAt: message.dueAt,
    });
  }

  /**
   * Claims up to `limit` due rows for `workerId` until `leaseUntil`, counting an attempt on each, and
   * returns them. Exclusive across app instances: on MySQL/MariaDB with SELECT … FOR UPDATE SKIP
   * LOCKED, so any number of workers can run without sending a message twice; on SQLite with one
   * atomic UPDATE (SQLite has a single writer).
   */
  async claimDue(workerId: string, now: Date, leaseUntil: Date, limit: number): Promise<OutboxMessage[]> {
    const claimed = { lockedBy: workerId, lockedUntil: leaseUntil, nextAttemptAt: leaseUntil };
    if (isMysqlFamily(this.manager.connection)) {
      // READ COMMITTED: under REPEATABLE READ the locking range scan also takes gap locks, and a
      // request's INSERT into the outbox (the row a mail-sending request commits) then deadlocked
      // with a claim in flight (seen on MariaDB with two instances). Row locks are all a claim needs.
      const ids = await this.uow.withTransaction({ isolationLevel: 'READ COMMITTED' }, async () => {
        const due: { id: number }[] = await this.manager.query(
          `SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= ?
           ORDER BY next_attempt_at, id LIMIT ${Number(limit)} FOR UPDATE SKIP LOCKED`,
          [now],
        );
        if (due.length > 0) {
          await this.repo
            .createQueryBuilder()
            .update()
            .set({ ...claimed, attempts: () => 'attempts + 1' })
            .whereInIds(due.map((r) => r.id))
            .execute();
        }
        return due.map((r) => Number(r.id));
      });
      return ids.length > 0 ? this.repo.findBy({ id: In(ids) }) : [];
    }

    await this.repo
      .createQueryBuilder()
      .update()
      .set({ ...claimed, attempts: () => 'attempts + 1' })
      .where(
        `id IN (SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= :now
                ORDER BY next_attempt_at, id LIMIT ${Number(limit)})`,
        { now },
      )
      .execute();
    return this.repo.findBy({ status: 'pending', lockedBy: workerId, lockedUntil: leaseUntil });
  }

  /** Delivered: erases the payload. False when the claim had expired (another worker may hold the row). */
  markSent(claim: OutboxMessage, sentAt: Date): Promise<boolean> {
    return this.release(claim, { status: 'sent', sentAt, lastError: null, payload: ERASED_PAYLOAD });
  }

  /** Failed, to be tried again at `nextAttemptAt`; the payload stays for that attempt. */
  markFailed(claim: OutboxMessage, lastError: string, nextAttemptAt: Date): Promise<boolean> {
    return this.release(claim, { status: 'pending', lastError, nextAttemptAt });
  }

  /**
   * Not attempted (nothing was sent): un-counts the claim's attempt and makes the row due again at
   * `nextAttemptAt` for any worker, e.g. one holding the payload key this one lacks.
   */
  handBack(claim: OutboxMessage, reason: string, nextAttemptAt: Date): Promise<boolean> {
    return this.release(claim, {
      status: 'pending',
      lastError: reason,
      nextAttemptAt,
      attempts: Math.max(0, claim.attempts - 1),
    });
  }

  /** Given up on: erases the payload; `lastError` says why. */
  markDead(claim: OutboxMessage, lastError: string): Promise<boolean> {
    return this.release(claim, { status: 'dead', lastError, payload: ERASED_PAYLOAD });
  }

  /** What is waiting, and what gave up (for /health/ready details and metrics). */
  async stats(): Promise<OutboxStats> {
    const rows = await this.repo
      .createQueryBuilder('m')
      .select('m.status', 'status')
      .addSelect('COUNT(*)', 'n')
      .where('m.status IN (:...statuses)', { statuses: ['pending', 'dead'] })
      .groupBy('m.status')
      .getRawMany<{ status: string; n: string | number }>();
    const count = (status: string) => Number(rows.find((r) => r.status === status)?.n ?? 0);
    return { pending: count('pending'), dead: count('dead') };
  }

  /** Deletes sent and dead rows created before `cutoff`; pending rows are never touched. */
  async deleteFinished(cutoff: Date): Promise<number> {
    const result = await this.repo
      .createQueryBuilder()
      .delete()
      .where('status IN (:...finished)', { finished: ['sent', 'dead'] })
      .andWhere('created_at < :cutoff', { cutoff })
      .execute();
    return result.affected ?? 0;
  }

  private async release(claim: OutboxMessage, changes: Partial<OutboxMessage>): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ ...changes, lockedBy: null, lockedUntil: null })
      .where('id = :id AND locked_by = :workerId AND locked_until = :lockedUntil', {
        id: claim.id,
        workerId: claim.lockedBy,
        lockedUntil: claim.lockedUntil,
      })
      .execute();
    return result.affected !== 0;
  }
}
