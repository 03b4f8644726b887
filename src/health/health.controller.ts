import { Controller, Get, HttpStatus, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Redis } from 'ioredis';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { Public } from '../common/auth/decorators.js';
import { ApiProblem } from '../common/openapi.js';
import { AppException } from '../common/problem.js';
import { createRedis } from '../common/redis.js';
import type { Config } from '../config/config.js';
import { LiveDto, ReadyDto } from './dto/health.dto.js';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController implements OnApplicationShutdown {
  /** A client of its own (REDIS_URL set), so the probe sees Redis as the throttler would. */
  private readonly redis: Redis | undefined;
  private readonly logger = new Logger('Health');
  /** The dependencies down at the last probe: a change is logged once, not every probe. */
  private down = new Map<string, string>();

  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    config: ConfigService<Config, true>,
  ) {
    const url = config.getOrThrow('auth', { infer: true }).redisUrl;
    this.redis = url
      ? createRedis(url, {
          lazyConnect: true,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          commandTimeout: 500,
        })
      : undefined;
    // Failed reconnects are reported by the probe (once per change), not by one line each.
    this.redis?.on('error', () => undefined);
  }

  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }

  @Get('live')
  @ApiOperation({ operationId: 'live', summary: 'Liveness: the process is up' })
  @ApiOkResponse({ description: 'The process is up.', type: LiveDto })
  live() {
    return { status: 'ok' };
  }

  /**
   * 503 while the database cannot answer a ping; 200 again as soon as it can, without a restart. The
   * body names each failing dependency in `errors[]` (`field` is the dependency); the cause goes to
   * the log once per change, never to the public body. A public probe carries no per-user signal:
   * the mail backlog rose after forgot-password for known addresses only, so it is on /metrics alone
   * (DESIGN §5 "Bounded by design").
   */
  @Get('ready')
  @ApiOperation({ operationId: 'ready', summary: 'Readiness: the database answers' })
  @ApiOkResponse({
    description: 'The database answers.',
    type: ReadyDto,
  })
  @ApiProblem(503, ['NOT_READY'], {
    description: 'a dependency does not answer; `errors[]` names it (`field`: `database`)',
  })
  async ready() {
    try {
      const result = await this.health.check([() => this.database.pingCheck('database', { timeout: 2000 })]);
      // Redis down leaves the instance ready: throttles fall back to this process's memory, so it
      // can still serve safely, and failing readiness would pull every instance out at once.
      const redis = await this.redisStatus();
      this.record(redis.status === 'down' ? new Map([['redis', redis.cause]]) : new Map<string, string>());
      if (redis.status === 'none') {
        return result;
      }
      const indicator = { status: redis.status };
      return {
        ...result,
        ...(redis.status === 'up' ? { info: { ...result.info, redis: indicator } } : {}),
        details: { ...result.details, redis: indicator },
      };
    } catch (error) {
      const failing = failures(error);
      const redis = await this.redisStatus();
      if (redis.status === 'down') {
        failing.set('redis', redis.cause);
      }
      this.record(failing);
      throw new AppException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'NOT_READY',
        `Not ready: ${[...failing.keys()].join(', ')} down.`,
        [...failing.keys()].map((field) => ({ field, message: 'down' })),
      );
    }
  }

  private async redisStatus(): Promise<{ status: 'none' | 'up' | 'down'; cause: string }> {
    if (!this.redis) {
      return { status: 'none', cause: '' };
    }
    try {
      if (this.redis.status === 'wait') {
        await this.redis.connect();
      }
      await this.redis.ping();
      return { status: 'up', cause: '' };
    } catch (error) {
      return { status: 'down', cause: error instanceof Error ? error.message : String(error) };
    }
  }

  private record(failing: Map<string, string>): void {
    for (const [dependency, cause] of failing) {
      if (!this.down.has(dependency)) {
        this.logger.warn({ dependency, cause }, 'Dependency down');
      }
    }
    for (const dependency of this.down.keys()) {
      if (!failing.has(dependency)) {
        this.logger.log({ dependency }, 'Dependency back');
      }
    }
    this.down = failing;
  }
}

/** Each failing indicator and the reason it gave, from what terminus throws. */
function failures(error: unknown): Map<string, string> {
  const response =
    typeof error === 'object' && error !== null && 'getResponse' in error
      ? (error as { getResponse(): unknown }).getResponse()
      : null;
  const failed = (response as { error?: Record<string, { message?: unknown }> } | null)?.error ?? {};
  const map = new Map<string, string>();
  for (const [name, detail] of Object.entries(failed)) {
    map.set(name, typeof detail?.message === 'string' ? detail.message : 'does not answer');
  }
  if (map.size === 0) {
    map.set('database', error instanceof Error ? error.message : 'does not answer');
  }
  return map;
}
