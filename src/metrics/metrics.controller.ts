import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Headers, HttpStatus, NotFoundException, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblem } from '../common/openapi.js';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/auth/decorators.js';
import { AppException } from '../common/problem.js';
import type { Config } from '../config/config.js';
import { MetricsService } from './metrics.service.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Prometheus scrape endpoint, unprefixed (/metrics). With METRICS_TOKEN set it needs
 * `Authorization: Bearer <METRICS_TOKEN>`, compared in constant time. Without one it is public in
 * development and test, but in production only when METRICS_PUBLIC=true says so on purpose: otherwise
 * it answers the 404 of a route that does not exist (DESIGN §5, "Bounded by design"). The app still
 * boots, so a deployment that scrapes nothing needs no token.
 */
@ApiTags('metrics')
@Public()
@Controller('metrics')
export class MetricsController {
  private readonly expected?: Buffer;
  /** False in production with neither METRICS_TOKEN nor METRICS_PUBLIC=true. */
  private readonly served: boolean;

  constructor(
    private readonly metrics: MetricsService,
    config: ConfigService<Config, true>,
  ) {
    const app = config.getOrThrow('app', { infer: true });
    this.expected = app.metricsToken === undefined ? undefined : digest(app.metricsToken);
    this.served = app.metricsToken !== undefined || app.metricsPublic || !app.isProduction;
  }

  @Get()
  @ApiOperation({ operationId: 'metrics', summary: 'Prometheus metrics (text exposition format)' })
  @ApiBearerAuth()
  @ApiOkResponse({
    description: 'Prometheus text format 0.0.4.',
    content: { 'text/plain': { schema: { type: 'string', maxLength: 10_000_000 } } },
  })
  @ApiProblem(404, ['NOT_FOUND'], {
    description: 'production with neither METRICS_TOKEN nor METRICS_PUBLIC=true: the route does not exist',
  })
  @ApiProblem(401, ['UNAUTHENTICATED'], {
    description: 'METRICS_TOKEN is set and the bearer token is missing or wrong',
    headers: {
      'WWW-Authenticate': { required: true, schema: { type: 'string', maxLength: 64, pattern: '^Bearer ' } },
    },
  })
  async scrape(
    @Headers('authorization') authorization: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string> {
    this.authorize(authorization);
    const body = await this.metrics.render();
    void reply.header('content-type', this.metrics.contentType).header('cache-control', 'no-store');
    return body;
  }

  private authorize(authorization: string | undefined): void {
    if (!this.served) {
      throw new NotFoundException('Cannot GET /metrics');
    }
    if (this.expected === undefined) {
      return;
    }
    // One or more spaces after the scheme, as the API's bearer (src/auth/bearer-token.ts); Node has
    // trimmed the value's trailing white space.
    const match = /^Bearer +(.+)$/i.exec(authorization ?? '');
    if (!match || !timingSafeEqual(digest(match[1]), this.expected)) {
      throw new AppException(
        HttpStatus.UNAUTHORIZED,
        'UNAUTHENTICATED',
        'Metrics need the configured bearer token.',
        undefined,
        { 'www-authenticate': 'Bearer realm="metrics"' },
      );
    }
  }
}
