import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { EntityManager, Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { Clock } from '../common/clock.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import type { RequestMeta } from '../common/request-meta.js';
import { AuditEvent, type AuditOutcome } from './audit-event.entity.js';

export interface AuditInput {
  outcome?: AuditOutcome;
  userId?: number | null;
  actorUserId?: number | null;
  meta?: RequestMeta;
  metadata?: Record<string, unknown>;
}

/** Keys that must never reach the trail, whatever a caller passes by mistake. */
const SECRET_KEY = /pass|token|secret|authorization|jwt|cookie/i;

/**
 * Writes the security trail. Pass the caller's EntityManager to record inside its transaction, so the
 * event and the change it describes commit (or roll back) together. Rows are never updated or deleted
 * here; only the retention purge removes old ones.
 */
@Injectable()
export class AuditService {
  constructor(
    @InjectRepository(AuditEvent) private readonly events: Repository<AuditEvent>,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
  ) {}

  async record(event: string, input: AuditInput = {}, manager?: EntityManager): Promise<void> {
    const repository = (manager ?? this.uow.tx).getRepository(AuditEvent);
    const row: Partial<AuditEvent> = {
      occurredAt: this.clock.now(),
      event,
      outcome: input.outcome ?? 'success',
      userId: input.userId ?? null,
      actorUserId: input.actorUserId ?? null,
      ip: input.meta?.ip ?? null,
      userAgent: input.meta?.userAgent ?? null,
      requestId: input.meta?.requestId ?? null,
      metadata: input.metadata ? withoutSecrets(input.metadata) : null,
    };
    // simple-json columns take a plain object; TypeORM's insert typing cannot express that.
    await repository.insert(row as QueryDeepPartialEntity<AuditEvent>);
  }

  /** Whether `event` was recorded for the user since `since` (optionally with the given metadata). */
  async hasRecent(
    event: string,
    userId: number,
    since: Date,
    metadata: Record<string, unknown> = {},
  ): Promise<boolean> {
    const query = this.events
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
}

function withoutSecrets(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(metadata).filter(([key]) => !SECRET_KEY.test(key)));
}
