import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString } from 'class-validator';
import {
  CodePointLength,
  ISO_DATE_TIME_MAX_LENGTH,
  IsIsoDateTime,
  IsOptionalNotNull,
  MaxCodePoints,
  Trim,
} from '../../common/validators.js';

export const TITLE_MAX_LENGTH = 200;
export const DESCRIPTION_MAX_LENGTH = 2000;

/** The owner is always the caller: userId, id and timestamps are not fields here, so they are refused. */
export class CreateTodoDto {
  // Explicit bounds: the plugin cannot read them from the code-point validators.
  @ApiProperty({
    description: 'Trimmed; 1–200 characters (Unicode code points, as the column counts them).',
    minLength: 1,
    maxLength: TITLE_MAX_LENGTH,
    example: 'Renew the TLS certificate',
  })
  @Trim()
  @IsString()
  @CodePointLength(1, TITLE_MAX_LENGTH)
  title!: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    maxLength: DESCRIPTION_MAX_LENGTH,
    description: 'Up to 2,000 characters (Unicode code points).',
    example: 'The wildcard certificate expires at the end of the month.',
  })
  @IsOptional()
  @IsString()
  @MaxCodePoints(DESCRIPTION_MAX_LENGTH)
  description?: string | null;

  /**
   * Absent means false on create and unchanged on update. (Not an OpenAPI `default`: generators
   * would make a defaulted field required.)
   */
  @IsOptionalNotNull()
  @IsBoolean()
  completed?: boolean;

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    maxLength: ISO_DATE_TIME_MAX_LENGTH,
    description: 'ISO 8601 with its offset (`Z` or `±hh:mm`), or a date alone (midnight UTC); stored in UTC.',
    example: '2030-01-31T17:00:00.000Z',
  })
  @IsOptional()
  @IsIsoDateTime()
  dueAt?: string | null;
}
