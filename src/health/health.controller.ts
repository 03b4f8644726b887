import { Controller, Get, HttpStatus } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService } from '@nestjs/terminus';
import { Public } from '../auth/decorators.js';
import { AppException } from '../common/problem.js';
import { DatabaseHealthIndicator } from './database.health.js';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
  ) {}

  @Get('live')
  @ApiOkResponse({ description: 'The process is up.' })
  live() {
    return { status: 'ok' };
  }

  /** 503 while the database cannot answer a ping; 200 again as soon as it can, without a restart. */
  @Get('ready')
  @ApiOkResponse({ description: 'The database answers.' })
  @ApiServiceUnavailableResponse({
    description: `The database does not answer (status ${HttpStatus.SERVICE_UNAVAILABLE}).`,
  })
  async ready() {
    try {
      return await this.health.check([() => this.database.ping()]);
    } catch {
      throw new AppException(HttpStatus.SERVICE_UNAVAILABLE, 'NOT_READY', 'The database does not answer.');
    }
  }
}
