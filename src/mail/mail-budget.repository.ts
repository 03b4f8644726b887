import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { isMysqlFamily } from '../database/data-source.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { MailBudgetWindow } from './mail-budget.entity.js';

/**
 * The mail_budget table. A reservation is one upsert that takes a unit only while the window has one
 * left (or has run out and starts over), so two requests, or two app instances, can never both take
 * the last unit; no read happens before the write. Joins the caller's unit of work.
 */
@Injectable()
export class MailBudgetRepository extends EntityRepository<MailBudgetWindow> {
  constructor(uow: UnitOfWork) {
    super(uow, MailBudgetWindow);
  }

  /** Takes one of `cap` units of the (recipient, kind) window that started within `windowMs`; false if none is left. */
  async take(recipientKey: string, kind: string, now: Date, windowMs: number, cap: number): Promise<boolean> {
    const nonce = randomBytes(16).toString('hex');
    const params = { recipientKey, kind, now, cutoff: new Date(now.getTime() - windowMs), cap, nonce };
    // MySQL evaluates ON DUPLICATE KEY UPDATE assignments left to right with the new values, SQLite
    // with the old ones; in this order both read the old window and count.
    const fresh = 'window_started_at <= :cutoff';
    const assignments = `taken_by = CASE WHEN ${fresh} OR count < :cap THEN :nonce ELSE taken_by END,
      count = CASE WHEN ${fresh} THEN 1 WHEN count < :cap THEN count + 1 ELSE count END,
      window_started_at = CASE WHEN ${fresh} THEN :now ELSE window_started_at END`;
    const insert = `INSERT INTO mail_budget (recipient_key, kind, window_started_at, count, taken_by)
      VALUES (:recipientKey, :kind, :now, 1, :nonce)`;
    const upsert = isMysqlFamily(this.manager.connection)
      ? `${insert} ON DUPLICATE KEY UPDATE ${assignments}`
      : `${insert} ON CONFLICT (recipient_key, kind) DO UPDATE SET ${assignments}`;
    const driver = this.manager.connection.driver;
    await this.manager.query(...driver.escapeQueryWithParameters(upsert, params));
    const row = await this.repo.findOne({ where: { recipientKey, kind }, select: { takenBy: true } });
    return row?.takenBy === nonce;
  }

  /** Deletes windows that started before `before` (every window is shorter); returns how many went. */
  async purgeStartedBefore(before: Date): Promise<number> {
    const result = await this.repo
      .createQueryBuilder()
      .delete()
      .where('window_started_at < :before', { before })
      .execute();
    return result.affected ?? 0;
  }
}
