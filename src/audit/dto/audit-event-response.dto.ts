import { ApiProperty } from '@nestjs/swagger';
import { isoString } from '../../common/iso-date.js';
import { ApiDateTimeProperty, ApiIdProperty } from '../../common/openapi.js';
import { PageOf } from '../../common/pagination.js';
import type { AuditEvent, AuditOutcome } from '../audit-event.entity.js';

/** One entry of a user's own security trail: what happened, when, from where, and how it ended. */
export class AuditEventResponseDto {
  /** BIGINT id, as a decimal string. */
  @ApiProperty({ maxLength: 20, pattern: '^[1-9][0-9]{0,19}$', example: '1042' })
  id!: string;

  @ApiProperty({ maxLength: 64, pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$', example: 'auth.login_failed' })
  event!: string;

  @ApiProperty({ enum: ['success', 'failure'], example: 'failure' })
  outcome!: AuditOutcome;

  @ApiDateTimeProperty()
  occurredAt!: string;

  @ApiProperty({ type: String, nullable: true, maxLength: 45, example: '203.0.113.7' })
  ip!: string | null;

  @ApiProperty({ type: String, nullable: true, maxLength: 255, example: 'Mozilla/5.0 (X11; Linux x86_64)' })
  userAgent!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    maxLength: 128,
    pattern: '^[A-Za-z0-9._:-]{1,128}$',
    example: '7f0c2a5e-4f1d-4c55-9a57-0d1f0b7f3c2e',
  })
  requestId!: string | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    maxProperties: 32,
    nullable: true,
    description: 'Small, event-specific details (ids, field names); never a secret.',
    example: { reason: 'wrong_password' },
  })
  metadata!: Record<string, unknown> | null;
}

/** What an operator sees: the same, plus whom the event concerns and which admin acted. */
export class AdminAuditEventResponseDto extends AuditEventResponseDto {
  /** The user the event concerns. */
  @ApiIdProperty({ nullable: true, example: 7 })
  userId!: number | null;

  /** The administrator who acted, for admin actions. */
  @ApiIdProperty({ nullable: true, example: 1 })
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
    occurredAt: isoString(event.occurredAt),
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
