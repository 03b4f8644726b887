import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Authenticated, CurrentUser } from '../common/auth/decorators.js';
import { ApiProblem } from '../common/openapi.js';
import { AuditQueryService } from './audit-query.service.js';
import { OwnAuditEventsQueryDto } from './dto/audit-events-query.dto.js';
import { AuditEventPageDto } from './dto/audit-event-response.dto.js';

@ApiTags('users')
@Authenticated()
@Controller('users/me/audit-events')
export class AuditController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get()
  @ApiOperation({
    operationId: 'listMyAuditEvents',
    summary: 'The caller’s own security trail, newest first (keyset-paginated)',
    description:
      'Sign-ins (failed ones included), lockouts, password and session changes, admin actions on the ' +
      'account and todo changes, with time, IP, user agent and outcome.',
  })
  @ApiOkResponse({ type: AuditEventPageDto })
  @ApiProblem(400, ['CURSOR_INVALID'], { description: 'a cursor this list did not issue' })
  list(@CurrentUser() user: AuthUser, @Query() query: OwnAuditEventsQueryDto) {
    return this.audit.listOwn(user.id, query);
  }
}
