import { Controller, Delete, Get, HttpCode, HttpStatus, Query } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblem } from '../common/openapi.js';
import { IdParam } from '../common/id-param.js';
import { isoString } from '../common/iso-date.js';
import { mapPage, type Page, PageOf, PageQueryDto } from '../common/pagination.js';
import { type RequestMeta, ReqMeta } from '../common/request-meta.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../common/auth/decorators.js';
import { SessionDto } from './dto/auth.dto.js';
import type { Session } from './session.entity.js';
import { SessionsService } from './sessions.service.js';

const SessionPageDto = PageOf(SessionDto, 'SessionPageDto');

function toSessionResponse(session: Session & { current: boolean }): SessionDto {
  return {
    id: session.id,
    current: session.current,
    createdAt: isoString(session.createdAt),
    lastUsedAt: session.lastUsedAt ? isoString(session.lastUsedAt) : null,
    expiresAt: isoString(session.expiresAt),
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
  @ApiOperation({ operationId: 'listSessions', summary: 'Your active sessions (devices), newest first' })
  @ApiOkResponse({ type: SessionPageDto })
  @ApiProblem(400, ['CURSOR_INVALID'], { description: 'a cursor this list did not issue' })
  async list(@CurrentUser() user: AuthUser, @Query() page: PageQueryDto): Promise<Page<SessionDto>> {
    return mapPage(await this.sessions.list(user, page), toSessionResponse);
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ operationId: 'revokeSession', summary: 'Revoke one of your sessions' })
  @ApiNoContentResponse()
  @ApiProblem(404, ['SESSION_NOT_FOUND'], { description: 'missing, already revoked, or not yours' })
  revoke(@CurrentUser() user: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta): Promise<void> {
    return this.sessions.revokeOne(user, id, meta);
  }
}
