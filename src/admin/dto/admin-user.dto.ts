import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import { ApiDateTimeProperty, ApiIdProperty, ID_MAXIMUM, EMAIL_FORMAT } from '../../common/openapi.js';
import { PageOf, PageQueryDto } from '../../common/pagination.js';
import { MaxCodePoints, Trim } from '../../common/validators.js';
import type { UserRole } from '../../common/auth/auth-user.js';
import type { LockoutState } from '../../users/login-lockout.service.js';
import { hasTotp, type User } from '../../users/user.entity.js';

export class ListAdminUsersQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    description: 'Only accounts whose (normalized) email starts with this text.',
    maxLength: 255,
  })
  @IsOptional()
  @Trim()
  @IsString()
  @MaxCodePoints(255)
  email?: string;
}

/** An account as operators see it: identity and state, never the password hash. */
export class AdminUserDto {
  @ApiIdProperty({ example: 7 })
  id!: number;

  @ApiProperty({ format: EMAIL_FORMAT, maxLength: 255, example: 'alice@example.com' })
  email!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    maxLength: 50,
    pattern: '^[a-z0-9_.-]{3,50}$',
    example: 'alice',
  })
  username!: string | null;

  @ApiProperty({ enum: ['user', 'admin'], example: 'user' })
  role!: UserRole;

  isVerified!: boolean;

  /** Two-step sign-in (TOTP) is on; POST /admin/users/{id}/mfa/reset turns it off */
  mfaEnabled!: boolean;

  /** Locked out after repeated failed logins, right now, on at least one client or everywhere. */
  locked!: boolean;

  @ApiDateTimeProperty({ nullable: true, example: null })
  lockedUntil!: string | null;

  /** Consecutive failed logins from all clients since the last success. */
  @ApiProperty({ type: 'integer', format: 'int64', minimum: 0, maximum: ID_MAXIMUM, example: 0 })
  failedLoginCount!: number;

  disabled!: boolean;

  @ApiDateTimeProperty({ nullable: true, example: null })
  disabledAt!: string | null;

  @ApiDateTimeProperty()
  createdAt!: string;

  @ApiDateTimeProperty({ nullable: true })
  lastLoginAt!: string | null;
}

export const AdminUserPageDto = PageOf(AdminUserDto, 'AdminUserPageDto');

export function toAdminUser(user: User, lockout: LockoutState | undefined, now: Date): AdminUserDto {
  const lockedUntil = lockout?.lockedUntil ?? null;
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    role: user.role,
    isVerified: user.isVerified,
    mfaEnabled: hasTotp(user),
    locked: lockedUntil !== null && lockedUntil.getTime() > now.getTime(),
    lockedUntil: lockedUntil?.toISOString() ?? null,
    failedLoginCount: lockout?.failures ?? 0,
    disabled: user.disabledAt !== null,
    disabledAt: user.disabledAt?.toISOString() ?? null,
    createdAt: user.createdAt.toISOString(),
    lastLoginAt: user.lastLoginAt?.toISOString() ?? null,
  };
}
