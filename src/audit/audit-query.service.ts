import { HttpStatus, Injectable } from '@nestjs/common';
import { mapPage, type Page } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import { AuditRepository } from './audit.repository.js';
import type { OwnAuditEventsQueryDto, SearchAuditEventsQueryDto } from './dto/audit-events-query.dto.js';
import {
  type AdminAuditEventResponseDto,
  type AuditEventResponseDto,
  toAdminAuditEventResponse,
  toAuditEventResponse,
} from './dto/audit-event-response.dto.js';

/** Reads the trail: a user's own events, and the operators' search. Never writes. */
@Injectable()
export class AuditQueryService {
  constructor(private readonly events: AuditRepository) {}

  /** The caller's own events, newest first; the owner's id is always in the WHERE. */
  async listOwn(userId: number, query: OwnAuditEventsQueryDto): Promise<Page<AuditEventResponseDto>> {
    return mapPage(await this.events.page({ userId, event: query.event }, query), toAuditEventResponse);
  }

  async search(query: SearchAuditEventsQueryDto): Promise<Page<AdminAuditEventResponseDto>> {
    const from = query.from === undefined ? undefined : new Date(query.from);
    const to = query.to === undefined ? undefined : new Date(query.to);
    if (from && to && from.getTime() >= to.getTime()) {
      throw new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
        { field: 'to', message: 'to must be later than from' },
      ]);
    }
    const { userId, event, outcome } = query;
    return mapPage(
      await this.events.page({ userId, event, outcome, from, to }, query),
      toAdminAuditEventResponse,
    );
  }
}
