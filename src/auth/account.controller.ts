import { Body, Controller, Delete, HttpCode, HttpStatus, Put, UseGuards } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { ApiNoContentResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblem } from '../common/openapi.js';
import { type RequestMeta, ReqMeta } from '../common/request-meta.js';
import { AccountService } from './account.service.js';
import { AUTH_BUSY, INVALID_PASSWORD_WHEN } from './api-problems.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../common/auth/decorators.js';
import { ChangePasswordDto, DeleteAccountDto } from './dto/auth.dto.js';
import { ApiThrottled, AuthThrottlerGuard } from './auth-throttler.guard.js';
import { Throttler } from './throttlers.js';

@ApiThrottled('too many password checks for this account or IP')
@ApiTags('users')
@Authenticated()
@UseGuards(AuthThrottlerGuard)
@SkipThrottle({ [Throttler.email]: true })
@Controller('users/me')
export class AccountController {
  constructor(private readonly account: AccountService) {}

  @Put('password')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'changePassword',
    summary: 'Change your password: other sessions and reset links are revoked, a notice is mailed',
  })
  @ApiNoContentResponse()
  @ApiProblem(401, ['INVALID_PASSWORD'], { description: INVALID_PASSWORD_WHEN })
  @ApiProblem(400, ['VALIDATION_FAILED'], { description: 'weak or common new password' })
  @ApiProblem(503, ['AUTH_BUSY'], { description: AUTH_BUSY })
  changePassword(
    @CurrentUser() user: AuthUser,
    @Body() body: ChangePasswordDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<void> {
    return this.account.changePassword(user, body.currentPassword, body.newPassword, meta);
  }

  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'deleteAccount',
    summary: 'Delete your account, its sessions, tokens and todos (the audit trail stays)',
  })
  @ApiNoContentResponse()
  @ApiProblem(401, ['INVALID_PASSWORD'], { description: INVALID_PASSWORD_WHEN })
  @ApiProblem(503, ['AUTH_BUSY'], { description: AUTH_BUSY })
  deleteAccount(
    @CurrentUser() user: AuthUser,
    @Body() body: DeleteAccountDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<void> {
    return this.account.deleteAccount(user, body.password, meta);
  }
}
