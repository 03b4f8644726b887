import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, ValidateIf } from 'class-validator';

export class UpdateProfileDto {
  @ApiPropertyOptional({
    example: 'ada.l',
    nullable: true,
    maxLength: 50,
    type: String,
    description: '3–50 of a-z 0-9 _ . - (case-insensitive, stored lower-cased); null removes it',
  })
  @ValidateIf((_o, value) => value !== null)
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,50}$/, { message: 'username must be 3-50 characters of a-z, 0-9, _ . -' })
  username?: string | null;

  /** Accepted only to answer EMAIL_IMMUTABLE rather than a generic unknown-field error. */
  @ApiPropertyOptional({
    description: 'Not changeable: sending it answers 400 EMAIL_IMMUTABLE',
    deprecated: true,
  })
  @IsOptional()
  email?: unknown;
}
