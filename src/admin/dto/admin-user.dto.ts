import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { PageOf, PageQueryDto } from '../../common/pagination.js';
import { Trim } from '../../common/validators.js';
import type { UserRole } from '../../common/auth/auth-user.js';
import type { User } from '../../users/user.entity.js';

export class ListAdminUsersQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    description: 'Only accounts whose (normalized) email starts with this text.',
    maxLength: 255,
  })
  @IsOptional()
  @Trim()
  @IsString()
  @MaxLength(255)
  email?: string;
}

/** An account as operators see it: identity and state, never the password hash. */
export class AdminUserDto {
  @ApiProperty({ example: 7 })
  id!: number;

  @ApiProperty({ example: 'alice@example.com' })
  email!: string;

  @ApiProperty({ type: String, nullable: true, example: 'alice' })
  username!: string | null;

  @ApiProperty({ enum: ['user', 'admin'], example: 'user' })
  role!: UserRole;

  @ApiProperty({ example: true })
  isVerified!: boolean;

  @ApiProperty({ description: 'Locked out after repeated failed logins, right now.', example: false })
  locked!: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: null })
  lockedUntil!: string | null;

  @ApiProperty({ description: 'Consecutive failed logins since the last success.', example: 0 })
  failedLoginCount!: number;

  @ApiProperty({ example: false })
  disabled!: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: null })
  disabledAt!: string | null;

  @ApiProperty({ format: 'date-time', example: '2030-01-02T09:30:00.000Z' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2030-01-03T08:00:00.000Z' })
  lastLoginAt!: string | null;
}

export const AdminUserPageDto = PageOf(AdminUserDto, 'AdminUserPageDto');

export function toAdminUser(user: User, now: Date): AdminUserDto {
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    role: user.role,
    isVerified: user.isVerified,
    locked: user.lockedUntil !== null && user.lockedUntil.getTime() > now.getTime(),
    lockedUntil: user.lockedUntil?.toISOString() ?? null,
    failedLoginCount: user.failedLoginCount,
    disabled: user.disabledAt !== null,
    disabledAt: user.disabledAt?.toISOString() ?? null,
    createdAt: user.createdAt.toISOString(),
    lastLoginAt: user.lastLoginAt?.toISOString() ?? null,
  };
}
