import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, Length, MaxLength } from 'class-validator';
import { IsIsoDateTime, IsOptionalNotNull, Trim } from '../../common/validators.js';

export const TITLE_MAX_LENGTH = 200;
export const DESCRIPTION_MAX_LENGTH = 2000;

/** The owner is always the caller: userId, id and timestamps are not fields here, so they are refused. */
export class CreateTodoDto {
  @ApiProperty({
    description: 'Trimmed; 1–200 characters.',
    minLength: 1,
    maxLength: TITLE_MAX_LENGTH,
    example: 'Renew the TLS certificate',
  })
  @Trim()
  @IsString()
  @Length(1, TITLE_MAX_LENGTH)
  title!: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    maxLength: DESCRIPTION_MAX_LENGTH,
    example: 'The wildcard certificate expires at the end of the month.',
  })
  @IsOptional()
  @IsString()
  @MaxLength(DESCRIPTION_MAX_LENGTH)
  description?: string | null;

  @ApiPropertyOptional({ default: false, example: false })
  @IsOptionalNotNull()
  @IsBoolean()
  completed?: boolean;

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'ISO 8601; stored in UTC.',
    example: '2030-01-31T17:00:00.000Z',
  })
  @IsOptional()
  @IsIsoDateTime()
  dueAt?: string | null;
}
