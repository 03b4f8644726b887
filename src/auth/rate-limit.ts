import { createHash } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  Logger,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import { AppException } from '../common/problem.js';
import type { Config } from '../config/config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { normalizeEmail } from '../users/email.js';

/** One fixed-window counter: how many hits so far, and when the window ends. */
export interface WindowCount {
  hits: number;
  resetInMs: number;
}

export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<WindowCount>;
  close(): Promise<void>;
}

/** Per-process counters; the default, and enough for one instance. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { hits: number; resetAt: number }>();
  private readonly sweeper = setInterval(() => this.sweep(), 60_000).unref();

  hit(key: string, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      window = { hits: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.hits += 1;
    return Promise.resolve({ hits: window.hits, resetInMs: window.resetAt - now });
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, window] of this.windows) {
      if (window.resetAt <= now) {
        this.windows.delete(key);
      }
    }
  }
}

/** INCR and PEXPIRE in one round trip, so every app instance shares one counter (DESIGN §8). */
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }
`;

export class RedisRateLimitStore implements RateLimitStore {
  private readonly logger = new Logger(RedisRateLimitStore.name);
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 2, keyPrefix: 'gatehouse:rate:' });
    this.redis.on('error', (error: Error) => this.logger.warn(`Redis: ${error.message}`));
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const [hits, ttl] = (await this.redis.eval(INCREMENT, 1, key, String(windowMs))) as [number, number];
    return { hits, resetInMs: ttl > 0 ? ttl : windowMs };
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}

/** The store the limiter uses: Redis when REDIS_URL is set, memory otherwise; closed with the app. */
@Injectable()
export class RateLimitStoreHolder implements OnModuleDestroy {
  readonly store: RateLimitStore;

  constructor(config: ConfigService<Config, true>) {
    const { redisUrl } = config.getOrThrow('auth', { infer: true });
    this.store = redisUrl ? new RedisRateLimitStore(redisUrl) : new MemoryRateLimitStore();
  }

  onModuleDestroy(): Promise<void> {
    return this.store.close();
  }
}

function emailIn(request: FastifyRequest): string | null {
  const body = request.body as { email?: unknown } | undefined;
  return typeof body?.email === 'string' && body.email.length > 0 ? normalizeEmail(body.email) : null;
}

/**
 * Two limits on every public auth route: per client IP (request.ip, which honours X-Forwarded-For
 * only under TRUST_PROXY) and per email address named in the body. The per-email counter runs for
 * unknown addresses too, so a 429 says nothing about whether an account exists.
 *
 * Hand-written rather than @nestjs/throttler: its 6.x build is CommonJS that require()s Nest 12's ES
 * modules, which Jest cannot load on Node 20, so no test could prove the limits.
 */
@Injectable()
export class AuthRateLimitGuard implements CanActivate {
  private readonly auth: Config['auth'];

  constructor(
    private readonly holder: RateLimitStoreHolder,
    private readonly metrics: MetricsService,
    config: ConfigService<Config, true>,
  ) {
    this.auth = config.getOrThrow('auth', { infer: true });
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const template = request.routeOptions.url ?? '(unmatched)';
    const route = `${request.method}:${template}`;
    const email = emailIn(request);
    const userId = (request as FastifyRequest & { user?: { id: number } }).user?.id;
    const checks = [
      // Signed-in routes that check a password again (change password, delete account) are limited
      // per account too, so a stolen access token cannot guess the password at leisure.
      ...(userId !== undefined
        ? [{ key: `user:${route}:${userId}`, limit: this.auth.throttleEmailLimit }]
        : []),
      { key: `ip:${route}:${request.ip}`, limit: this.auth.throttleIpLimit },
      ...(email
        ? [
            {
              key: `email:${route}:${createHash('sha256').update(email).digest('hex')}`,
              limit: this.auth.throttleEmailLimit,
            },
          ]
        : []),
    ];
    for (const check of checks) {
      const { hits, resetInMs } = await this.holder.store.hit(check.key, this.auth.throttleWindowMs);
      if (hits > check.limit) {
        this.metrics.throttleHit(template);
        throw new AppException(
          HttpStatus.TOO_MANY_REQUESTS,
          'RATE_LIMITED',
          'Too many requests; slow down and try again later.',
          undefined,
          { 'Retry-After': String(Math.max(1, Math.ceil(resetInMs / 1000))) },
        );
      }
    }
    return true;
  }
}
