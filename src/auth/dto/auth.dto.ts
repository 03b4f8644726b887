import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';
import { ApiDateTimeProperty, ApiIdProperty, EMAIL_FORMAT } from '../../common/openapi.js';
import { IsEmailAddress, MaxCodePoints } from '../../common/validators.js';
import { normalizeEmail } from '../../users/email.js';
import { UserResponseDto } from '../../users/dto/user-response.dto.js';
import { ACCESS_TOKEN_MAX_LENGTH } from '../bearer-token.js';

/*
 * Password fields only bound the input here, @MaxLength(1024): a 1 KB string cannot become a hashing
 * cost. The policy (length in code points, common passwords, not the email) is PasswordPolicy's, with
 * the account in hand. A literal, not a constant: src/metadata.ts documents literal arguments only.
 */

/**
 * Emails are validated in their stored form: lower-casing can lengthen a string (İ → i̇), so a length
 * check on the raw input could pass an address the users table cannot hold.
 */
const NormalizedEmail = () =>
  Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? normalizeEmail(value) : value));

/** Counted in code points, as the column counts them; documented by hand (the plugin cannot read it). */
const EMAIL_MAX = 254;
const EmailBound = () =>
  applyDecorators(
    MaxCodePoints(EMAIL_MAX),
    ApiProperty({ maxLength: EMAIL_MAX, example: 'ada@example.com' }),
  );

export class RegisterDto {
  @NormalizedEmail()
  @IsEmailAddress()
  @EmailBound()
  @ApiProperty({ format: EMAIL_FORMAT })
  email!: string;

  /**
   * 8–128 characters; not a common password
   * @example 'correct horse battery staple'
   */
  @IsString()
  @MaxLength(1024)
  password!: string;

  @ApiPropertyOptional({
    example: 'ada',
    maxLength: 50,
    description: '3–50 of a-z 0-9 _ . - (case-insensitive)',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,50}$/, { message: 'username must be 3-50 characters of a-z, 0-9, _ . -' })
  username?: string;
}

export class EmailDto {
  @NormalizedEmail()
  @IsEmailAddress()
  @EmailBound()
  @ApiProperty({ format: EMAIL_FORMAT })
  email!: string;
}

export class LoginDto {
  @NormalizedEmail()
  @IsString()
  @EmailBound()
  email!: string;

  /** @example 'correct horse battery staple' */
  @IsString()
  @MaxLength(1024)
  password!: string;
}

export class TokenDto {
  /**
   * The token from the mailed link
   * @example 'mT2x…'
   */
  @IsString()
  @Length(1, 256)
  token!: string;
}

export class ResetPasswordDto extends TokenDto {
  /** @example 'a new long passphrase' */
  @IsString()
  @MaxLength(1024)
  password!: string;
}

export class RefreshDto {
  /** The refresh token from login or the last refresh */
  @IsString()
  @Length(1, 256)
  refreshToken!: string;
}

export class ChangePasswordDto {
  @IsString()
  @MaxLength(1024)
  currentPassword!: string;

  /** @example 'another long passphrase' */
  @IsString()
  @MaxLength(1024)
  newPassword!: string;
}

export class DeleteAccountDto {
  /** Your current password */
  @IsString()
  @MaxLength(1024)
  password!: string;
}

export class AcceptedDto {
  @ApiProperty({ maxLength: 256, example: 'If the address can be used, an email is on its way.' })
  message!: string;
}

export class TokenPairDto {
  /** HS256 JWT; send as `Authorization: Bearer …` */
  @ApiProperty({
    maxLength: ACCESS_TOKEN_MAX_LENGTH,
    pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
  })
  accessToken!: string;

  /** Opaque; single use: every refresh returns a new one */
  @ApiProperty({ maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' })
  refreshToken!: string;

  @ApiProperty({ enum: ['Bearer'] })
  tokenType!: 'Bearer';

  /** Seconds until the access token expires */
  @ApiProperty({ type: 'integer', format: 'int32', minimum: 1, maximum: 86_400, example: 900 })
  expiresIn!: number;
}

export class LoginResponseDto extends TokenPairDto {
  user!: UserResponseDto;
}

export class SessionDto {
  @ApiIdProperty({ example: 7 })
  id!: number;

  /** The session this access token belongs to */
  current!: boolean;

  @ApiDateTimeProperty()
  createdAt!: string;

  @ApiDateTimeProperty({ nullable: true })
  lastUsedAt!: string | null;

  @ApiDateTimeProperty()
  expiresAt!: string;

  @ApiProperty({ type: String, nullable: true, maxLength: 45, example: '203.0.113.7' })
  ip!: string | null;

  @ApiProperty({ type: String, nullable: true, maxLength: 255, example: 'Mozilla/5.0 …' })
  userAgent!: string | null;
}
