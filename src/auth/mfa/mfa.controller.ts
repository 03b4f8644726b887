import { Body, Controller, Delete, HttpCode, HttpStatus, Post, UseGuards } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../../common/auth/decorators.js';
import { ApiProblem } from '../../common/openapi.js';
import { type RequestMeta, ReqMeta } from '../../common/request-meta.js';
import { AUTH_BUSY, INVALID_PASSWORD_WHEN } from '../api-problems.js';
import { ApiThrottled, AuthThrottlerGuard } from '../auth-throttler.guard.js';
import { ConfirmTotpDto, DisableTotpDto, RecoveryCodesDto, TotpSetupResponseDto } from '../dto/mfa.dto.js';
import { Throttler } from '../throttlers.js';
import { MfaService } from './mfa.service.js';

/** Turning the TOTP second factor on and off (DESIGN §4 "Second factor", §10). */
@ApiThrottled('too many attempts for this account or IP')
@ApiTags('auth')
@Authenticated()
@UseGuards(AuthThrottlerGuard)
@SkipThrottle({ [Throttler.email]: true })
@Controller('auth/mfa/totp')
export class MfaController {
  constructor(private readonly mfa: MfaService) {}

  @Post('setup')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    operationId: 'setupTotp',
    summary: 'Start two-step sign-in: a new secret for your authenticator app, pending until confirmed',
    description:
      'Replaces an earlier pending secret; an active one keeps working until the new one is confirmed.',
  })
  @ApiOkResponse({ type: TotpSetupResponseDto })
  setup(@CurrentUser() user: AuthUser, @ReqMeta() meta: RequestMeta): Promise<TotpSetupResponseDto> {
    return this.mfa.setup(user, meta);
  }

  @Post('confirm')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    operationId: 'confirmTotp',
    summary: 'Turn two-step sign-in on with a code of the pending secret: 10 recovery codes, shown once',
    description:
      'Audited as mfa.enabled and mailed. Replacing an active authenticator also needs `currentCode`.',
  })
  @ApiOkResponse({ type: RecoveryCodesDto })
  @ApiProblem(400, ['MFA_CODE_INVALID'], { description: 'the code does not match the pending secret' })
  @ApiProblem(400, ['MFA_SETUP_REQUIRED'], { description: 'no pending secret: call setup first' })
  @ApiProblem(400, ['MFA_CURRENT_CODE_REQUIRED'], { description: 'already on, and no currentCode sent' })
  @ApiProblem(401, ['MFA_INVALID'], { description: 'currentCode is wrong' })
  confirm(
    @CurrentUser() user: AuthUser,
    @Body() body: ConfirmTotpDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<RecoveryCodesDto> {
    return this.mfa.confirm(user, body.code, body.currentCode, meta);
  }

  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'disableTotp',
    summary: 'Turn two-step sign-in off with your password and a code (or a recovery code)',
    description: 'Audited as mfa.disabled; a notice is mailed. The recovery codes stop working.',
  })
  @ApiNoContentResponse()
  @ApiProblem(401, ['INVALID_PASSWORD'], { description: INVALID_PASSWORD_WHEN })
  @ApiProblem(401, ['MFA_INVALID'], { description: 'the code or recovery code is wrong or used' })
  @ApiProblem(400, ['MFA_NOT_ENABLED'], { description: 'two-step sign-in is not on' })
  @ApiProblem(503, ['AUTH_BUSY'], { description: AUTH_BUSY })
  disable(
    @CurrentUser() user: AuthUser,
    @Body() body: DisableTotpDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<void> {
    return this.mfa.disable(user, body.password, body.code, meta);
  }
}
