import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuditQueryService } from '../audit/audit-query.service.js';
import { SearchAuditEventsQueryDto } from '../audit/dto/audit-events-query.dto.js';
import { AdminAuditEventPageDto } from '../audit/dto/audit-event-response.dto.js';
import { ApiProblem } from '../common/openapi.js';
import { Roles } from '../common/auth/roles.guard.js';

@ApiTags('admin')
@Roles('admin')
@Controller('admin/audit-events')
export class AdminAuditController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get()
  @ApiOperation({
    operationId: 'searchAuditEvents',
    summary: 'Search the whole audit trail, newest first (keyset-paginated)',
    description:
      'Filters combine: userId, event, outcome, and the time window [from, to) in ISO 8601. ' +
      'Each equality filter is served by an index ending in id.',
  })
  @ApiOkResponse({ type: AdminAuditEventPageDto })
  @ApiProblem(400, ['VALIDATION_FAILED'], {
    description: 'a from/to that is not ISO 8601, or from not before to',
  })
  @ApiProblem(400, ['CURSOR_INVALID'], { description: 'a cursor this list did not issue' })
  search(@Query() query: SearchAuditEventsQueryDto) {
    return this.audit.search(query);
  }
}
