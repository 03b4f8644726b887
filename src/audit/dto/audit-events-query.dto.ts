import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { PageQueryDto } from '../../common/pagination.js';
import { ID_MAXIMUM } from '../../common/openapi.js';
import { ISO_DATE_TIME_MAX_LENGTH, IsIsoDateTime, PlainInteger } from '../../common/validators.js';
import type { AuditOutcome } from '../audit-event.entity.js';

/** Event names are dotted lower-case words, e.g. auth.login_failed. */
const EVENT_NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const EVENT_MAX_LENGTH = 64;

/** `?event=`, shared by the own trail and the operator search. */
export class OwnAuditEventsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    description: 'Only this event name.',
    maxLength: EVENT_MAX_LENGTH,
    pattern: EVENT_NAME.source,
  })
  @IsOptional()
  @IsString()
  @MaxLength(EVENT_MAX_LENGTH)
  @Matches(EVENT_NAME, { message: 'event must be a dotted event name such as auth.login_failed' })
  event?: string;
}

export class SearchAuditEventsQueryDto extends OwnAuditEventsQueryDto {
  @ApiPropertyOptional({
    description: 'Only events about this user.',
    type: 'integer',
    format: 'int64',
    minimum: 1,
    maximum: ID_MAXIMUM,
  })
  @IsOptional()
  @PlainInteger()
  @IsInt()
  @Min(1)
  @Max(ID_MAXIMUM)
  userId?: number;

  @ApiPropertyOptional({ enum: ['success', 'failure'] })
  @IsOptional()
  @IsIn(['success', 'failure'])
  outcome?: AuditOutcome;

  @ApiPropertyOptional({
    format: 'date-time',
    maxLength: ISO_DATE_TIME_MAX_LENGTH,
    description: 'Only events at or after this instant (ISO 8601 with its offset, or a date: midnight UTC).',
  })
  @IsOptional()
  @IsIsoDateTime()
  from?: string;

  @ApiPropertyOptional({
    format: 'date-time',
    maxLength: ISO_DATE_TIME_MAX_LENGTH,
    description:
      'Only events strictly before this instant (ISO 8601 with its offset, or a date: midnight UTC).',
  })
  @IsOptional()
  @IsIsoDateTime()
  to?: string;
}
