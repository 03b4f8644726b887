import { Body, Controller, Get, HttpStatus, Patch } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../common/auth/decorators.js';
import { unauthenticated } from '../common/auth/unauthenticated.js';
import { ApiProblem } from '../common/openapi.js';
import { AppException } from '../common/problem.js';
import { type RequestMeta, ReqMeta } from '../common/request-meta.js';
import { toUserResponse, UserResponseDto } from './dto/user-response.dto.js';
import { UpdateProfileDto } from './dto/update-profile.dto.js';
import { UsersService } from './users.service.js';

@ApiTags('users')
@Authenticated()
@Controller('users/me')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get()
  @ApiOperation({ operationId: 'getProfile', summary: 'Your profile' })
  @ApiOkResponse({ type: UserResponseDto })
  async me(@CurrentUser() caller: AuthUser): Promise<UserResponseDto> {
    const user = await this.users.findById(caller.id);
    if (!user) {
      throw unauthenticated();
    }
    return toUserResponse(user);
  }

  @Patch()
  @ApiOperation({ operationId: 'updateProfile', summary: 'Change your username (the email is immutable)' })
  @ApiOkResponse({ type: UserResponseDto })
  @ApiProblem(400, ['EMAIL_IMMUTABLE'], { description: '`email` was sent' })
  @ApiProblem(409, ['USERNAME_TAKEN'])
  async update(
    @CurrentUser() caller: AuthUser,
    @Body() body: UpdateProfileDto,
    @ReqMeta() meta: RequestMeta,
  ): Promise<UserResponseDto> {
    if (body.email !== undefined) {
      throw new AppException(
        HttpStatus.BAD_REQUEST,
        'EMAIL_IMMUTABLE',
        'The email of an account cannot be changed.',
      );
    }
    if (body.username === undefined) {
      return this.me(caller);
    }
    return toUserResponse(await this.users.updateUsername(caller, body.username, meta));
  }
}
