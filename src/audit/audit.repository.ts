import { Injectable } from '@nestjs/common';
import { In, type SelectQueryBuilder } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { forceIndex, type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { AuditEvent, type AuditOutcome } from './audit-event.entity.js';

/**
 * Index hints (MySQL family): each equality filter has an index ending in `id`, so a page is a range
 * scan that reads about limit + 1 rows whatever the depth. The most selective filter given picks the
 * index; the others, and from/to, are checked on the rows it yields. A time range alone is left to
 * the optimizer: it walks PRIMARY from the newest row, or (occurred_at) for a narrow old window.
 */
const BY_USER = 'IDX_audit_events_user_id_id';
const BY_EVENT = 'IDX_audit_events_event_id';
const BY_OUTCOME = 'IDX_audit_events_outcome_id';

export interface AuditFilter {
  userId?: number;
  event?: string;
  outcome?: AuditOutcome;
  from?: Date;
  to?: Date;
}

/** The audit trail, append-only: rows are inserted, read, and deleted only by age. */
@Injectable()
export class AuditRepository extends EntityRepository<AuditEvent> {
  constructor(uow: UnitOfWork) {
    super(uow, AuditEvent);
  }

  async append(row: Omit<AuditEvent, 'id'>): Promise<void> {
    // simple-json columns take a plain object; TypeORM's insert typing cannot express that.
    await this.repo.insert(row as QueryDeepPartialEntity<AuditEvent>);
  }

  /** Whether `event` was recorded for the user since `since`, with the given metadata entries. */
  async existsSince(
    event: string,
    userId: number,
    since: Date,
    metadata: Record<string, unknown>,
  ): Promise<boolean> {
    const query = this.repo
      .createQueryBuilder('e')
      .where('e.user_id = :userId AND e.event = :event AND e.occurred_at >= :since', {
        userId,
        event,
        since,
      });
    Object.entries(metadata).forEach(([key, value], i) => {
      query.andWhere(`e.metadata LIKE :m${i}`, {
        [`m${i}`]: `%${JSON.stringify(key)}:${JSON.stringify(value)}%`,
      });
    });
    return (await query.getCount()) > 0;
  }

  /** Newest first, keyset-paginated on the index the most selective filter names. */
  page(filter: AuditFilter, page: PageQueryDto): Promise<Page<AuditEvent>> {
    const qb = this.repo.createQueryBuilder('e');
    hintIndex(qb, filter);
    if (filter.userId !== undefined) {
      qb.andWhere('e.userId = :userId', { userId: filter.userId });
    }
    if (filter.event !== undefined) {
      qb.andWhere('e.event = :event', { event: filter.event });
    }
    if (filter.outcome !== undefined) {
      qb.andWhere('e.outcome = :outcome', { outcome: filter.outcome });
    }
    if (filter.from) {
      qb.andWhere('e.occurredAt >= :from', { from: filter.from });
    }
    if (filter.to) {
      qb.andWhere('e.occurredAt < :to', { to: filter.to });
    }
    return paginate(qb, page);
  }

  /** Deletes up to `limit` of the oldest rows before `before`, by primary key; returns how many went. */
  async deleteOldest(before: Date, limit: number): Promise<number> {
    const rows = await this.repo
      .createQueryBuilder('e')
      .select('e.id', 'id')
      .where('e.occurredAt < :before', { before })
      .orderBy('e.occurredAt', 'ASC')
      .limit(limit)
      .getRawMany<{ id: string | number }>();
    if (rows.length === 0) {
      return 0;
    }
    // Ids go back as the driver gave them (a string from MySQL's BIGINT, a number from SQLite).
    const result = await this.repo.delete({ id: In(rows.map((row) => row.id as string)) });
    return result.affected ?? rows.length;
  }
}

function hintIndex(qb: SelectQueryBuilder<AuditEvent>, filter: AuditFilter): void {
  if (filter.userId !== undefined) {
    forceIndex(qb, BY_USER);
  } else if (filter.event !== undefined) {
    forceIndex(qb, BY_EVENT);
  } else if (filter.outcome !== undefined) {
    forceIndex(qb, BY_OUTCOME);
  }
}
