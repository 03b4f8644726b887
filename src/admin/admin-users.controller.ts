import { Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../common/auth/auth-user.js';
import { CurrentUser } from '../common/auth/decorators.js';
import { Roles } from '../common/auth/roles.guard.js';
import { IdParam } from '../common/id-param.js';
import { ApiProblem } from '../common/openapi.js';
import { ReqMeta, type RequestMeta } from '../common/request-meta.js';
import { AdminUsersService } from './admin-users.service.js';
import { AdminUserPageDto, ListAdminUsersQueryDto } from './dto/admin-user.dto.js';

const NotFound = () => ApiProblem(404, ['USER_NOT_FOUND'], { description: 'no account has this id' });

@ApiTags('admin')
@Roles('admin')
@Controller('admin/users')
export class AdminUsersController {
  constructor(private readonly users: AdminUsersService) {}

  @Get()
  @ApiOkResponse({ type: AdminUserPageDto })
  @ApiProblem(400, ['CURSOR_INVALID'], { description: 'a cursor this list did not issue' })
  @ApiOperation({
    operationId: 'listUsers',
    summary: 'Search accounts by email prefix, newest first, with verified/locked/disabled state',
  })
  list(@Query() query: ListAdminUsersQueryDto) {
    return this.users.list(query);
  }

  @Post(':id/disable')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'disableUser',
    summary: 'Disable an account: sign-in refused and every session revoked at once',
    description: 'Audited as admin.user_disabled. An administrator cannot disable themselves.',
  })
  @ApiNoContentResponse({ description: 'Disabled (also when it already was).' })
  @ApiProblem(400, ['CANNOT_DISABLE_SELF'], { description: 'an administrator cannot disable themselves' })
  @NotFound()
  disable(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.disable(admin, id, meta);
  }

  @Post(':id/enable')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'enableUser',
    summary: 'Enable a disabled account again',
    description: 'Audited as admin.user_enabled.',
  })
  @ApiNoContentResponse({ description: 'Enabled (also when it already was).' })
  @NotFound()
  enable(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.enable(admin, id, meta);
  }

  @Post(':id/unlock')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'unlockUser',
    summary: 'End a brute-force lockout and reset the failed-login counters',
    description: 'Audited as admin.user_unlocked.',
  })
  @ApiNoContentResponse({ description: 'Unlocked.' })
  @NotFound()
  unlock(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.unlock(admin, id, meta);
  }

  @Post(':id/mfa/reset')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'resetUserMfa',
    summary: 'Turn off an account’s two-step sign-in (a lost authenticator): its recovery codes die too',
    description:
      'Audited as admin.mfa_reset (and mfa.disabled) with the acting administrator; the owner is mailed.',
  })
  @ApiNoContentResponse({ description: 'Reset (also when it was not on).' })
  @NotFound()
  resetMfa(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.resetMfa(admin, id, meta);
  }

  @Post(':id/resend-verification')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'resendUserVerification',
    summary: 'Mail a fresh email-verification link to an unverified account',
    description: 'Audited as admin.verification_resent.',
  })
  @ApiNoContentResponse({ description: 'Queued in the mail outbox.' })
  @NotFound()
  @ApiProblem(409, ['ALREADY_VERIFIED'], { description: 'the email is already verified' })
  resendVerification(@CurrentUser() admin: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.users.resendVerification(admin, id, meta);
  }
}
