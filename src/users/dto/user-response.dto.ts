import { ApiProperty } from '@nestjs/swagger';
import { isoString } from '../../common/iso-date.js';
import { ApiDateTimeProperty, ApiIdProperty, EMAIL_FORMAT } from '../../common/openapi.js';
import { hasTotp, type User } from '../user.entity.js';

export class UserResponseDto {
  @ApiIdProperty()
  id!: number;

  @ApiProperty({ format: EMAIL_FORMAT, maxLength: 255, example: 'ada@example.com' })
  email!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    maxLength: 50,
    pattern: '^[a-z0-9_.-]{3,50}$',
    example: 'ada',
  })
  username!: string | null;

  isVerified!: boolean;

  /** Whether sign-in asks for a TOTP code after the password */
  mfaEnabled!: boolean;

  @ApiProperty({ enum: ['user', 'admin'], example: 'user' })
  role!: string;

  @ApiDateTimeProperty()
  createdAt!: string;

  @ApiDateTimeProperty({ nullable: true })
  lastLoginAt!: string | null;
}

/** The only shape in which a user leaves the API: nothing internal (hash, counters, lockout) leaks. */
export function toUserResponse(user: User): UserResponseDto {
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    isVerified: user.isVerified,
    mfaEnabled: hasTotp(user),
    role: user.role,
    createdAt: isoString(user.createdAt),
    lastLoginAt: user.lastLoginAt ? isoString(user.lastLoginAt) : null,
  };
}
