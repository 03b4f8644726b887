import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuditQueryService } from '../audit/audit-query.service.js';
import { SearchAuditEventsQueryDto } from '../audit/dto/audit-events-query.dto.js';
import { AdminAuditEventPageDto } from '../audit/dto/audit-event-response.dto.js';
import { Roles } from '../common/auth/roles.guard.js';

@ApiTags('admin')
@Roles('admin')
@Controller('admin/audit-events')
export class AdminAuditController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get()
  @ApiOperation({
    summary: 'Search the whole audit trail, newest first (keyset-paginated)',
    description:
      'Filters combine: userId, event, outcome, and the time window [from, to) in ISO 8601. ' +
      'Each equality filter is served by an index ending in id.',
  })
  @ApiOkResponse({ type: AdminAuditEventPageDto })
  @ApiBadRequestResponse({
    description:
      'Invalid filter, e.g. a from/to that is not ISO 8601 or from not before to (code VALIDATION_FAILED), ' +
      'or a cursor this list did not issue (CURSOR_INVALID).',
  })
  search(@Query() query: SearchAuditEventsQueryDto) {
    return this.audit.search(query);
  }
}
