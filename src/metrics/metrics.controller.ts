import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Headers, HttpStatus, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/auth/decorators.js';
import { AppException } from '../common/problem.js';
import type { Config } from '../config/config.js';
import { MetricsService } from './metrics.service.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Prometheus scrape endpoint, unprefixed (/metrics). Public unless METRICS_TOKEN is set; then it needs
 * `Authorization: Bearer <METRICS_TOKEN>`, compared in constant time.
 */
@ApiTags('metrics')
@Public()
@Controller('metrics')
export class MetricsController {
  private readonly expected?: Buffer;

  constructor(
    private readonly metrics: MetricsService,
    config: ConfigService<Config, true>,
  ) {
    const token = config.getOrThrow('app', { infer: true }).metricsToken;
    this.expected = token === undefined ? undefined : digest(token);
  }

  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiBearerAuth()
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text format 0.0.4.' })
  @ApiUnauthorizedResponse({
    description: 'METRICS_TOKEN is set and the bearer token is missing or wrong (code UNAUTHENTICATED).',
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
    if (this.expected === undefined) {
      return;
    }
    const match = /^Bearer (.+)$/i.exec(authorization ?? '');
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
