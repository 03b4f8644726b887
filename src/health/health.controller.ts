import { Controller, Get, HttpStatus } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, type HealthIndicatorResult, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { Public } from '../common/auth/decorators.js';
import { AppException } from '../common/problem.js';
import { MailService } from '../mail/mail.service.js';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly mail: MailService,
  ) {}

  @Get('live')
  @ApiOkResponse({ description: 'The process is up.' })
  live() {
    return { status: 'ok' };
  }

  /** 503 while the database cannot answer a ping; 200 again as soon as it can, without a restart. */
  @Get('ready')
  @ApiOkResponse({ description: 'The database answers; details include the mail outbox backlog.' })
  @ApiServiceUnavailableResponse({
    description: `The database does not answer (status ${HttpStatus.SERVICE_UNAVAILABLE}).`,
  })
  async ready() {
    try {
      return await this.health.check([
        () => this.database.pingCheck('database', { timeout: 2000 }),
        () => this.outbox(),
      ]);
    } catch {
      throw new AppException(HttpStatus.SERVICE_UNAVAILABLE, 'NOT_READY', 'The database does not answer.');
    }
  }

  /** Details only: a mail backlog or dead letters never make the instance unready. */
  private async outbox(): Promise<HealthIndicatorResult> {
    return { mail_outbox: { status: 'up', ...(await this.mail.outboxStats()) } };
  }
}
