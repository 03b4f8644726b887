import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, MaxLength, Min } from 'class-validator';
import { PageQueryDto } from '../../common/pagination.js';
import { IsIsoDateTime } from '../../common/validators.js';
import type { AuditOutcome } from '../audit-event.entity.js';

/** Event names are dotted lower-case words, e.g. auth.login_failed. */
const EVENT_NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const EVENT_MAX_LENGTH = 64;

/** `?event=`, shared by the own trail and the operator search. */
export class OwnAuditEventsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only this event name.' })
  @IsOptional()
  @IsString()
  @MaxLength(EVENT_MAX_LENGTH)
  @Matches(EVENT_NAME, { message: 'event must be a dotted event name such as auth.login_failed' })
  event?: string;
}

export class SearchAuditEventsQueryDto extends OwnAuditEventsQueryDto {
  @ApiPropertyOptional({ description: 'Only events about this user.', minimum: 1 })
  @IsOptional()
  // Only a plain positive decimal becomes a number; "1e3", "0x10" or "" stay strings and fail IsInt.
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^[1-9][0-9]{0,9}$/.test(value) ? Number(value) : value,
  )
  @IsInt()
  @Min(1)
  userId?: number;

  @ApiPropertyOptional({ enum: ['success', 'failure'] })
  @IsOptional()
  @IsIn(['success', 'failure'])
  outcome?: AuditOutcome;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Only events at or after this instant (ISO 8601).',
  })
  @IsOptional()
  @IsIsoDateTime()
  from?: string;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Only events strictly before this instant (ISO 8601).',
  })
  @IsOptional()
  @IsIsoDateTime()
  to?: string;
}
