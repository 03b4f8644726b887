import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PageOf } from '../../common/pagination.js';
import type { AuditEvent, AuditOutcome } from '../audit-event.entity.js';

/** One entry of a user's own security trail: what happened, when, from where, and how it ended. */
export class AuditEventResponseDto {
  @ApiProperty({ description: 'BIGINT id, as a decimal string.', example: '1042' })
  id!: string;

  @ApiProperty({ example: 'auth.login_failed' })
  event!: string;

  @ApiProperty({ enum: ['success', 'failure'], example: 'failure' })
  outcome!: AuditOutcome;

  @ApiProperty({ format: 'date-time', example: '2030-01-02T09:30:00.000Z' })
  occurredAt!: string;

  @ApiProperty({ type: String, nullable: true, example: '203.0.113.7' })
  ip!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'Mozilla/5.0 (X11; Linux x86_64)' })
  userAgent!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '7f0c2a5e-4f1d-4c55-9a57-0d1f0b7f3c2e' })
  requestId!: string | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'Small, event-specific details (ids, field names); never a secret.',
    example: { reason: 'wrong_password' },
  })
  metadata!: Record<string, unknown> | null;
}

/** What an operator sees: the same, plus whom the event concerns and which admin acted. */
export class AdminAuditEventResponseDto extends AuditEventResponseDto {
  @ApiProperty({ type: Number, nullable: true, description: 'The user the event concerns.', example: 7 })
  userId!: number | null;

  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    description: 'The administrator who acted, for admin actions.',
    example: 1,
  })
  actorUserId!: number | null;
}

export const AuditEventPageDto = PageOf(AuditEventResponseDto, 'AuditEventPageDto');
export const AdminAuditEventPageDto = PageOf(AdminAuditEventResponseDto, 'AdminAuditEventPageDto');

/** Built field by field: the own trail never shows user_id or actor_user_id (someone else's id). */
export function toAuditEventResponse(event: AuditEvent): AuditEventResponseDto {
  return {
    id: String(event.id),
    event: event.event,
    outcome: event.outcome,
    occurredAt: event.occurredAt.toISOString(),
    ip: event.ip,
    userAgent: event.userAgent,
    requestId: event.requestId,
    metadata: event.metadata,
  };
}

export function toAdminAuditEventResponse(event: AuditEvent): AdminAuditEventResponseDto {
  return {
    ...toAuditEventResponse(event),
    userId: event.userId === null ? null : Number(event.userId),
    actorUserId: event.actorUserId === null ? null : Number(event.actorUserId),
  };
}
