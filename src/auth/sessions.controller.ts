import { Controller, Delete, Get, HttpCode, HttpStatus } from '@nestjs/common';
import {
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { IdParam } from '../common/id-param.js';
import { type RequestMeta, ReqMeta } from '../common/request-meta.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../common/auth/decorators.js';
import { SessionDto } from './dto/auth.dto.js';
import type { Session } from './session.entity.js';
import { SessionsService } from './sessions.service.js';

function toSessionResponse(session: Session & { current: boolean }): SessionDto {
  return {
    id: session.id,
    current: session.current,
    createdAt: session.createdAt.toISOString(),
    lastUsedAt: session.lastUsedAt ? session.lastUsedAt.toISOString() : null,
    expiresAt: session.expiresAt.toISOString(),
    ip: session.ip,
    userAgent: session.userAgent,
  };
}

@ApiTags('auth')
@Authenticated()
@Controller('auth/sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  @Get()
  @ApiOperation({ summary: 'Your active sessions (devices), newest first' })
  @ApiOkResponse({ type: [SessionDto] })
  async list(@CurrentUser() user: AuthUser): Promise<SessionDto[]> {
    return (await this.sessions.list(user)).map(toSessionResponse);
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Revoke one of your sessions' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ description: 'SESSION_NOT_FOUND (missing, already revoked, or not yours)' })
  revoke(@CurrentUser() user: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta): Promise<void> {
    return this.sessions.revokeOne(user, id, meta);
  }
}
