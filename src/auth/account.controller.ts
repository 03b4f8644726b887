import { Body, Controller, Delete, HttpCode, HttpStatus, Put, UseGuards } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import {
  ApiBadRequestResponse,
  ApiNoContentResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { type RequestMeta, ReqMeta } from '../common/request-meta.js';
import { AccountService } from './account.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../common/auth/decorators.js';
import { ChangePasswordDto, DeleteAccountDto } from './dto/auth.dto.js';
import { ApiThrottled, AuthThrottlerGuard } from './auth-throttler.guard.js';
import { Throttler } from './throttlers.js';

@ApiTags('users')
@Authenticated()
@UseGuards(AuthThrottlerGuard)
@SkipThrottle({ [Throttler.email]: true })
@ApiThrottled('RATE_LIMITED: too many password checks for this account or IP')
@Controller('users/me')
export class AccountController {
  constructor(private readonly account: AccountService) {}

  @Put('password')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Change your password: other sessions and reset links are revoked, a notice is mailed',
  })
  @ApiNoContentResponse()
  @ApiUnauthorizedResponse({ description: 'INVALID_PASSWORD (the current password is wrong)' })
  @ApiBadRequestResponse({ description: 'VALIDATION_FAILED (weak or common new password)' })
  changePassword(
    @CurrentUser() user: AuthUser,
    @Body() body: ChangePasswordDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<void> {
    return this.account.changePassword(user, body.currentPassword, body.newPassword, meta);
  }

  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete your account, its sessions, tokens and todos (the audit trail stays)' })
  @ApiNoContentResponse()
  @ApiUnauthorizedResponse({ description: 'INVALID_PASSWORD' })
  deleteAccount(
    @CurrentUser() user: AuthUser,
    @Body() body: DeleteAccountDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<void> {
    return this.account.deleteAccount(user, body.password, meta);
  }
}
