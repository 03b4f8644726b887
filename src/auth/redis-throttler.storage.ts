import { Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import type { Redis, Result } from 'ioredis';
import { createRedis } from '../common/redis.js';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * One fixed window per key, and a block key once the window's limit is passed. Atomic in one round
 * trip, so every app instance counts against the same budget (DESIGN §8). While blocked, hits are
 * not counted; the block's end starts a fresh window (what throttler's memory storage does too).
 * Returns [hits, ms until the window resets, blocked (0|1), ms until the block ends].
 */
const INCREMENT = `
local hitsKey, blockKey = KEYS[1], KEYS[2]
local ttl, limit, blockFor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local blockedFor = redis.call('PTTL', blockKey)
if blockedFor > 0 then
  return { tonumber(redis.call('GET', blockKey)), blockedFor, 1, blockedFor }
end
local hits = redis.call('INCR', hitsKey)
local expiresIn = redis.call('PTTL', hitsKey)
if expiresIn < 0 then
  redis.call('PEXPIRE', hitsKey, ttl)
  expiresIn = ttl
end
if hits <= limit then
  return { hits, expiresIn, 0, 0 }
end
if blockFor > 0 then
  redis.call('SET', blockKey, hits, 'PX', blockFor)
  redis.call('DEL', hitsKey)
  return { hits, blockFor, 1, blockFor }
end
return { hits, expiresIn, 1, expiresIn }
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    throttleIncrement(
      hitsKey: string,
      blockKey: string,
      ttlMs: number,
      limit: number,
      blockMs: number,
    ): Result<[number, number, number, number], Context>;
  }
}

/**
 * @nestjs/throttler's storage on Redis, so that app instances share their counters. No maintained
 * adapter accepts Nest 12 (@nest-lab/throttler-storage-redis pins Nest ≤ 11), and the contract is one
 * method.
 *
 * Redis is a shared counter, not the system of record: when it is unreachable, counting falls back to
 * this process's memory (throttler's own storage) — every limit still holds per instance, no request
 * fails or waits for it — logged once when Redis goes and once when it is back, and ioredis keeps
 * reconnecting in the background. No command is queued while disconnected and each has a short
 * timeout, so a dead or hanging Redis costs a request at most COMMAND_TIMEOUT_MS.
 */
export class RedisThrottlerStorage implements ThrottlerStorage, OnModuleInit, OnApplicationShutdown {
  private static readonly COMMAND_TIMEOUT_MS = 500;
  private static readonly BOOT_WAIT_MS = 1000;
  private readonly logger = new Logger(RedisThrottlerStorage.name);
  private readonly redis: Redis;
  private readonly fallback = new ThrottlerStorageService();
  private usingFallback = false;

  constructor(url: string) {
    this.redis = createRedis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: RedisThrottlerStorage.COMMAND_TIMEOUT_MS,
    });
    this.redis.defineCommand('throttleIncrement', { numberOfKeys: 2, lua: INCREMENT });
    // ioredis emits an error for every failed reconnect; the first one is worth a line, not the rest.
    this.redis.on('error', (error: Error) => this.fellBack(error));
    this.redis.on('ready', () => {
      if (this.usingFallback) {
        this.usingFallback = false;
        this.logger.log('Redis is reachable again: throttle counters are shared across instances');
      }
    });
  }

  /**
   * Gives the first connection a moment, so the first requests after boot count in Redis rather than
   * in memory; a refused connection ends the wait at once, a silent one after BOOT_WAIT_MS.
   */
  async onModuleInit(): Promise<void> {
    if (this.redis.status === 'ready') {
      return;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done).off('error', done);
        resolve();
      };
      const timer = setTimeout(done, RedisThrottlerStorage.BOOT_WAIT_MS);
      this.redis.once('ready', done).once('error', done);
    });
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    if (this.redis.status !== 'ready') {
      this.fellBack(new Error(`connection is ${this.redis.status}`));
      return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    // The hash tag keeps both keys in one Redis Cluster slot, as a multi-key script needs.
    const base = `gatehouse:throttle:{${throttlerName}:${key}}`;
    try {
      const [totalHits, expiresInMs, blocked, blockExpiresInMs] = await this.redis.throttleIncrement(
        `${base}:hits`,
        `${base}:block`,
        ttl,
        limit,
        blockDuration,
      );
      return {
        totalHits,
        timeToExpire: Math.ceil(expiresInMs / 1000),
        isBlocked: blocked === 1,
        timeToBlockExpire: Math.ceil(blockExpiresInMs / 1000),
      };
    } catch (error) {
      this.fellBack(error);
      return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.fallback.onApplicationShutdown();
    this.redis.removeAllListeners('error').on('error', () => undefined);
    if (this.redis.status === 'ready') {
      await this.redis.quit();
    } else {
      this.redis.disconnect();
    }
  }

  private fellBack(error: unknown): void {
    if (!this.usingFallback) {
      this.usingFallback = true;
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.warn(
        `Redis unavailable (${reason}): counting throttles in this process's memory until it returns`,
      );
    }
  }
}
