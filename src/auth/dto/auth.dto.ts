import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';
import { normalizeEmail } from '../../users/email.js';
import { UserResponseDto } from '../../users/dto/user-response.dto.js';

/**
 * Password fields only bound the input here (a 1 KB string cannot become a hashing cost); the policy
 * (length in code points, common passwords, not the email) is PasswordPolicy's, with the account in hand.
 */
const PASSWORD_INPUT_MAX = 1024;

/**
 * Emails are validated in their stored form: lower-casing can lengthen a string (İ → i̇), so a length
 * check on the raw input could pass an address the users table cannot hold.
 */
const NormalizedEmail = () =>
  Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? normalizeEmail(value) : value));

export class RegisterDto {
  @ApiProperty({ example: 'ada@example.com', maxLength: 254 })
  @NormalizedEmail()
  @IsEmail({}, { message: 'email must be an email address' })
  @MaxLength(254)
  email!: string;

  @ApiProperty({
    example: 'correct horse battery staple',
    description: '8–128 characters; not a common password',
  })
  @IsString()
  @MaxLength(PASSWORD_INPUT_MAX)
  password!: string;

  @ApiPropertyOptional({ example: 'ada', description: '3–50 of a-z 0-9 _ . - (case-insensitive)' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.-]{3,50}$/, { message: 'username must be 3-50 characters of a-z, 0-9, _ . -' })
  username?: string;
}

export class EmailDto {
  @ApiProperty({ example: 'ada@example.com' })
  @NormalizedEmail()
  @IsEmail({}, { message: 'email must be an email address' })
  @MaxLength(254)
  email!: string;
}

export class LoginDto {
  @ApiProperty({ example: 'ada@example.com' })
  @NormalizedEmail()
  @IsString()
  @MaxLength(254)
  email!: string;

  @ApiProperty({ example: 'correct horse battery staple' })
  @IsString()
  @MaxLength(PASSWORD_INPUT_MAX)
  password!: string;
}

export class TokenDto {
  @ApiProperty({ description: 'The token from the mailed link', example: 'mT2x…' })
  @IsString()
  @Length(1, 256)
  token!: string;
}

export class ResetPasswordDto extends TokenDto {
  @ApiProperty({ example: 'a new long passphrase' })
  @IsString()
  @MaxLength(PASSWORD_INPUT_MAX)
  password!: string;
}

export class RefreshDto {
  @ApiProperty({ description: 'The refresh token from login or the last refresh' })
  @IsString()
  @Length(1, 256)
  refreshToken!: string;
}

export class ChangePasswordDto {
  @ApiProperty()
  @IsString()
  @MaxLength(PASSWORD_INPUT_MAX)
  currentPassword!: string;

  @ApiProperty({ example: 'another long passphrase' })
  @IsString()
  @MaxLength(PASSWORD_INPUT_MAX)
  newPassword!: string;
}

export class DeleteAccountDto {
  @ApiProperty({ description: 'Your current password' })
  @IsString()
  @MaxLength(PASSWORD_INPUT_MAX)
  password!: string;
}

export class AcceptedDto {
  @ApiProperty({ example: 'If the address can be used, an email is on its way.' })
  message!: string;
}

export class TokenPairDto {
  @ApiProperty({ description: 'HS256 JWT; send as `Authorization: Bearer …`' })
  accessToken!: string;

  @ApiProperty({ description: 'Opaque; single use: every refresh returns a new one' })
  refreshToken!: string;

  @ApiProperty({ example: 'Bearer' })
  tokenType!: 'Bearer';

  @ApiProperty({ example: 900, description: 'Seconds until the access token expires' })
  expiresIn!: number;
}

export class LoginResponseDto extends TokenPairDto {
  @ApiProperty({ type: UserResponseDto })
  user!: UserResponseDto;
}

export class SessionDto {
  @ApiProperty({ example: 7 })
  id!: number;

  @ApiProperty({ example: true, description: 'The session this access token belongs to' })
  current!: boolean;

  @ApiProperty({ example: '2026-11-22T10:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ example: '2026-11-22T10:05:00.000Z', nullable: true, type: String })
  lastUsedAt!: string | null;

  @ApiProperty({ example: '2026-12-22T10:00:00.000Z' })
  expiresAt!: string;

  @ApiProperty({ example: '203.0.113.7', nullable: true, type: String })
  ip!: string | null;

  @ApiProperty({ example: 'Mozilla/5.0 …', nullable: true, type: String })
  userAgent!: string | null;
}
