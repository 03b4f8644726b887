import { HttpStatus, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository, SelectQueryBuilder } from 'typeorm';
import { forceIndex, mapPage, type Page, paginate } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import { AuditEvent } from './audit-event.entity.js';
import type { OwnAuditEventsQueryDto, SearchAuditEventsQueryDto } from './dto/audit-events-query.dto.js';
import {
  type AdminAuditEventResponseDto,
  type AuditEventResponseDto,
  toAdminAuditEventResponse,
  toAuditEventResponse,
} from './dto/audit-event-response.dto.js';

/**
 * Index hints (MySQL family): each equality filter has an index ending in `id`, so a page is a range
 * scan that reads about limit + 1 rows whatever the depth. The most selective filter given picks the
 * index; the others, and from/to, are checked on the rows it yields. A time range alone is left to
 * the optimizer: it walks PRIMARY from the newest row, or (occurred_at) for a narrow old window.
 */
const BY_USER = 'IDX_audit_events_user_id_id';
const BY_EVENT = 'IDX_audit_events_event_id';
const BY_OUTCOME = 'IDX_audit_events_outcome_id';

/** Reads the trail: a user's own events, and the operators' search. Never writes. */
@Injectable()
export class AuditQueryService {
  constructor(@InjectRepository(AuditEvent) private readonly events: Repository<AuditEvent>) {}

  /** The caller's own events, newest first; the owner's id is always in the WHERE. */
  async listOwn(userId: number, query: OwnAuditEventsQueryDto): Promise<Page<AuditEventResponseDto>> {
    const qb = forceIndex(this.events.createQueryBuilder('e'), BY_USER).where('e.userId = :userId', {
      userId,
    });
    if (query.event !== undefined) {
      qb.andWhere('e.event = :event', { event: query.event });
    }
    return mapPage(await paginate(qb, query), toAuditEventResponse);
  }

  async search(query: SearchAuditEventsQueryDto): Promise<Page<AdminAuditEventResponseDto>> {
    const from = query.from === undefined ? undefined : new Date(query.from);
    const to = query.to === undefined ? undefined : new Date(query.to);
    if (from && to && from.getTime() >= to.getTime()) {
      throw new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
        { field: 'to', message: 'to must be later than from' },
      ]);
    }
    const qb = this.events.createQueryBuilder('e');
    hintIndex(qb, query);
    if (query.userId !== undefined) {
      qb.andWhere('e.userId = :userId', { userId: query.userId });
    }
    if (query.event !== undefined) {
      qb.andWhere('e.event = :event', { event: query.event });
    }
    if (query.outcome !== undefined) {
      qb.andWhere('e.outcome = :outcome', { outcome: query.outcome });
    }
    if (from) {
      qb.andWhere('e.occurredAt >= :from', { from });
    }
    if (to) {
      qb.andWhere('e.occurredAt < :to', { to });
    }
    return mapPage(await paginate(qb, query), toAdminAuditEventResponse);
  }
}

function hintIndex(qb: SelectQueryBuilder<AuditEvent>, query: SearchAuditEventsQueryDto): void {
  if (query.userId !== undefined) {
    forceIndex(qb, BY_USER);
  } else if (query.event !== undefined) {
    forceIndex(qb, BY_EVENT);
  } else if (query.outcome !== undefined) {
    forceIndex(qb, BY_OUTCOME);
  }
}
