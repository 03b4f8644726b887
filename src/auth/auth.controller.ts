import { Body, Controller, HttpCode, HttpStatus, Post, UseGuards } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import {
  ApiAcceptedResponse,
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { ApiProblem } from '../common/openapi.js';
import { type RequestMeta, ReqMeta } from '../common/request-meta.js';
import { noSoonerThan } from '../common/timing.js';
import { toUserResponse } from '../users/dto/user-response.dto.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser, Public } from '../common/auth/decorators.js';
import {
  AcceptedDto,
  EmailDto,
  LoginDto,
  LoginResponseDto,
  RefreshDto,
  RegisterDto,
  ResetPasswordDto,
  TokenDto,
  TokenPairDto,
} from './dto/auth.dto.js';
import { MfaChallengeDto, MfaLoginDto } from './dto/mfa.dto.js';
import { LoginService } from './login.service.js';
import { MfaLoginService } from './mfa/mfa-login.service.js';
import { PasswordResetService } from './password-reset.service.js';
import { RegistrationService } from './registration.service.js';
import { SessionsService } from './sessions.service.js';
import { AUTH_BUSY } from './api-problems.js';
import { ApiThrottled, AuthThrottlerGuard, RETRY_AFTER_HEADERS } from './auth-throttler.guard.js';
import { NOT_THROTTLED, Throttler } from './throttlers.js';

/**
 * Resend and forgot do a few writes for a known address and one read for an unknown one; both answer
 * after the same floor so the difference is not measurable (register already spends a bcrypt hash either way).
 */
const UNIFORM_ANSWER_MS = 150;

const LOGIN_BUSY =
  'too many password checks queued, or the ones already in flight on this address did not settle in time; retry shortly';
const MFA_BUSY = 'the codes already in flight on this account did not settle in time; retry shortly';

const ACCEPTED: AcceptedDto = { message: 'If the address can be used, an email is on its way.' };

@ApiThrottled('per IP and per email address')
@ApiTags('auth')
@UseGuards(AuthThrottlerGuard)
@SkipThrottle({ [Throttler.account]: true })
@Controller('auth')
export class AuthController {
  constructor(
    private readonly registration: RegistrationService,
    private readonly login: LoginService,
    private readonly sessions: SessionsService,
    private readonly passwordReset: PasswordResetService,
    private readonly mfaLogin: MfaLoginService,
  ) {}

  @Public()
  @Post('register')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    operationId: 'register',
    summary: 'Create an account (or re-send mail to an existing one): the same 202 either way',
  })
  @ApiAcceptedResponse({ type: AcceptedDto })
  @ApiProblem(400, ['VALIDATION_FAILED'], { description: 'bad email, weak or common password, bad username' })
  @ApiProblem(409, ['USERNAME_TAKEN'])
  @ApiProblem(503, ['AUTH_BUSY'], { description: AUTH_BUSY })
  async register(@Body() body: RegisterDto, @ReqMeta() meta: RequestMeta): Promise<AcceptedDto> {
    await this.registration.register(body.email, body.password, body.username, meta);
    return ACCEPTED;
  }

  @Public()
  @Post('verify-email')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    operationId: 'verifyEmail',
    summary: 'Confirm an email address with the token from the mailed link',
  })
  @ApiOkResponse({ type: AcceptedDto })
  @ApiProblem(400, ['TOKEN_INVALID', 'TOKEN_EXPIRED'])
  async verifyEmail(@Body() body: TokenDto, @ReqMeta() meta: RequestMeta): Promise<AcceptedDto> {
    await this.registration.verifyEmail(body.token, meta);
    return { message: 'Your email address is confirmed.' };
  }

  @Public()
  @Post('resend-verification')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    operationId: 'resendVerification',
    summary: 'Send a new verification mail if the account exists and is unverified: 202 always',
  })
  @ApiAcceptedResponse({ type: AcceptedDto })
  async resendVerification(@Body() body: EmailDto, @ReqMeta() meta: RequestMeta): Promise<AcceptedDto> {
    await noSoonerThan(UNIFORM_ANSWER_MS, this.registration.resendVerification(body.email, meta));
    return ACCEPTED;
  }

  @Public()
  // No per-email limit here: anyone could spend it to keep the owner out. Failures are counted per
  // (address, client) and account-wide by the lockout instead (DESIGN §5, "Lockout is not a weapon").
  @SkipThrottle({ [Throttler.email]: true })
  @Post('login')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    operationId: 'login',
    summary: 'Sign in: an access token and a refresh token, or (two-step sign-in on) an mfaToken',
    description:
      'For an account with TOTP, a correct password opens no session yet: the answer is ' +
      '`{mfaRequired: true, mfaToken, expiresIn}`; finish with POST /auth/login/mfa. A wrong password ' +
      'answers the same for every account.',
  })
  @ApiExtraModels(LoginResponseDto, MfaChallengeDto)
  @ApiOkResponse({
    description: 'Signed in, or the second step is required (`mfaRequired: true`)',
    schema: { oneOf: [{ $ref: getSchemaPath(LoginResponseDto) }, { $ref: getSchemaPath(MfaChallengeDto) }] },
  })
  @ApiProblem(401, ['INVALID_CREDENTIALS'], { description: 'unknown email and wrong password alike' })
  @ApiProblem(403, ['EMAIL_NOT_VERIFIED', 'ACCOUNT_DISABLED'], {
    description: 'only after a correct password',
  })
  @ApiProblem(429, ['ACCOUNT_LOCKED'], {
    description: 'too many failed sign-ins',
    headers: RETRY_AFTER_HEADERS,
  })
  @ApiProblem(503, ['AUTH_BUSY'], { description: LOGIN_BUSY })
  async signIn(
    @Body() body: LoginDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<LoginResponseDto | MfaChallengeDto> {
    const result = await this.login.login(body.email, body.password, meta);
    if ('mfaRequired' in result) {
      return result;
    }
    const { user, ...tokens } = result;
    return { ...tokens, user: toUserResponse(user) };
  }

  @Public()
  // Per IP here; per account, wrong codes count toward the lockout like wrong passwords.
  @SkipThrottle({ [Throttler.email]: true })
  @Post('login/mfa')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    operationId: 'loginMfa',
    summary: 'Finish a two-step sign-in: the mfaToken with a TOTP code or a recovery code',
    description:
      'Send `code` (6 digits) or `recoveryCode`, not both. The mfaToken is single use, lives 5 minutes ' +
      'and dies after 5 codes; a code is accepted once per account.',
  })
  @ApiOkResponse({ type: LoginResponseDto })
  @ApiProblem(401, ['MFA_INVALID'], {
    description:
      'wrong, replayed or used code or recovery code; unknown, used, expired or exhausted mfaToken',
  })
  @ApiProblem(403, ['EMAIL_NOT_VERIFIED', 'ACCOUNT_DISABLED'])
  @ApiProblem(429, ['ACCOUNT_LOCKED'], {
    description: 'too many failed sign-ins',
    headers: RETRY_AFTER_HEADERS,
  })
  @ApiProblem(503, ['AUTH_BUSY'], { description: MFA_BUSY })
  async signInMfa(@Body() body: MfaLoginDto, @ReqMeta() meta: RequestMeta): Promise<LoginResponseDto> {
    const { user, ...tokens } = await this.mfaLogin.finish(
      body.mfaToken,
      body.recoveryCode !== undefined ? { recoveryCode: body.recoveryCode } : { code: body.code },
      meta,
    );
    return { ...tokens, user: toUserResponse(user) };
  }

  @Public()
  @Post('refresh')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    operationId: 'refresh',
    summary: 'Rotate: a new token pair; the presented refresh token dies (a replay revokes the session)',
  })
  @ApiOkResponse({ type: TokenPairDto })
  @ApiProblem(401, ['REFRESH_INVALID'], {
    description: 'unknown, expired, revoked or replayed refresh token',
  })
  refresh(@Body() body: RefreshDto, @ReqMeta() meta: RequestMeta): Promise<TokenPairDto> {
    return this.sessions.refresh(body.refreshToken, meta);
  }

  @Authenticated()
  @SkipThrottle(NOT_THROTTLED)
  @Post('logout')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'logout',
    summary: 'Revoke this session: its access token stops working at once',
  })
  @ApiNoContentResponse()
  logout(@CurrentUser() user: AuthUser, @ReqMeta() meta: RequestMeta): Promise<void> {
    return this.sessions.logout(user, meta);
  }

  @Authenticated()
  @SkipThrottle(NOT_THROTTLED)
  @Post('logout-all')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ operationId: 'logoutAll', summary: 'Revoke every session of your account' })
  @ApiNoContentResponse()
  logoutAll(@CurrentUser() user: AuthUser, @ReqMeta() meta: RequestMeta): Promise<void> {
    return this.sessions.logoutAll(user, meta);
  }

  @Public()
  @Post('forgot-password')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    operationId: 'forgotPassword',
    summary: 'Mail a reset link if the account exists: 202 always',
  })
  @ApiAcceptedResponse({ type: AcceptedDto })
  async forgotPassword(@Body() body: EmailDto, @ReqMeta() meta: RequestMeta): Promise<AcceptedDto> {
    await noSoonerThan(UNIFORM_ANSWER_MS, this.passwordReset.forgotPassword(body.email, meta));
    return ACCEPTED;
  }

  @Public()
  @Post('reset-password')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    operationId: 'resetPassword',
    summary: 'Set a new password with a reset token; signs out everywhere, does not sign in',
  })
  @ApiNoContentResponse()
  @ApiProblem(400, ['TOKEN_INVALID', 'TOKEN_EXPIRED', 'VALIDATION_FAILED'])
  @ApiProblem(503, ['AUTH_BUSY'], { description: AUTH_BUSY })
  resetPassword(@Body() body: ResetPasswordDto, @ReqMeta() meta: RequestMeta): Promise<void> {
    return this.passwordReset.resetPassword(body.token, body.password, meta);
  }
}
