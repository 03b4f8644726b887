import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { AuditOutcome } from './audit-event.entity.js';
import { AuditRepository } from './audit.repository.js';

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
 * Writes the security trail. A row joins the caller's unit of work, so the event and the change it
 * describes commit (or roll back) together. Rows are never updated or deleted here; only the
 * retention purge removes old ones.
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly events: AuditRepository,
    private readonly clock: Clock,
  ) {}

  async record(event: string, input: AuditInput = {}): Promise<void> {
    await this.events.append({
      occurredAt: this.clock.now(),
      event,
      outcome: input.outcome ?? 'success',
      userId: input.userId ?? null,
      actorUserId: input.actorUserId ?? null,
      ip: input.meta?.ip ?? null,
      userAgent: input.meta?.userAgent ?? null,
      requestId: input.meta?.requestId ?? null,
      metadata: input.metadata ? withoutSecrets(input.metadata) : null,
    });
  }

  /** Whether `event` was recorded for the user since `since` (optionally with the given metadata). */
  hasRecent(
    event: string,
    userId: number,
    since: Date,
    metadata: Record<string, unknown> = {},
  ): Promise<boolean> {
    return this.events.existsSince(event, userId, since, metadata);
  }
}

function withoutSecrets(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(metadata).filter(([key]) => !SECRET_KEY.test(key)));
}
