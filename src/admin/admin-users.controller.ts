import { Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { AuthUser } from '../common/auth/auth-user.js';
import { CurrentUser } from '../common/auth/decorators.js';
import { Roles } from '../common/auth/roles.guard.js';
import { IdParam } from '../common/id-param.js';
import { ReqMeta, type RequestMeta } from '../common/request-meta.js';
import { AdminUsersService } from './admin-users.service.js';
import { AdminUserPageDto, ListAdminUsersQueryDto } from './dto/admin-user.dto.js';

const ID_PARAM = { name: 'id', schema: { type: 'integer', minimum: 1 }, example: 7 } as const;
const NOT_FOUND = 'No account has this id (code USER_NOT_FOUND).';
const INVALID = 'Invalid query or id (code VALIDATION_FAILED, with errors[]).';

@ApiTags('admin')
@Roles('admin')
@ApiBadRequestResponse({ description: INVALID })
@Controller('admin/users')
export class AdminUsersController {
  constructor(private readonly users: AdminUsersService) {}

  @Get()
  @ApiOperation({
    summary: 'Search accounts by email prefix, newest first, with verified/locked/disabled state',
  })
  @ApiOkResponse({ type: AdminUserPageDto })
  list(@Query() query: ListAdminUsersQueryDto) {
    return this.users.list(query);
  }

  @Post(':id/disable')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Disable an account: sign-in refused and every session revoked at once',
    description: 'Audited as admin.user_disabled. An administrator cannot disable themselves.',
  })
  @ApiParam(ID_PARAM)
  @ApiNoContentResponse({ description: 'Disabled (also when it already was).' })
  @ApiBadRequestResponse({ description: `${INVALID} Disabling oneself: CANNOT_DISABLE_SELF.` })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  disable(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.disable(admin, id, meta);
  }

  @Post(':id/enable')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Enable a disabled account again', description: 'Audited as admin.user_enabled.' })
  @ApiParam(ID_PARAM)
  @ApiNoContentResponse({ description: 'Enabled (also when it already was).' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  enable(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.enable(admin, id, meta);
  }

  @Post(':id/unlock')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'End a brute-force lockout and reset the failed-login counters',
    description: 'Audited as admin.user_unlocked.',
  })
  @ApiParam(ID_PARAM)
  @ApiNoContentResponse({ description: 'Unlocked.' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  unlock(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.unlock(admin, id, meta);
  }

  @Post(':id/resend-verification')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Mail a fresh email-verification link to an unverified account',
    description: 'Audited as admin.verification_resent.',
  })
  @ApiParam(ID_PARAM)
  @ApiNoContentResponse({ description: 'Queued in the mail outbox.' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  @ApiConflictResponse({ description: 'The email is already verified (code ALREADY_VERIFIED).' })
  resendVerification(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.resendVerification(admin, id, meta);
  }
}
