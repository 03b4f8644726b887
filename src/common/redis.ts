import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

/**
 * A Redis client. ioredis (some 45 modules, ~0.1 s on a busy host) is loaded on the first call, so only
 * an instance with REDIS_URL pays for it at boot. Its CommonJS build loads synchronously.
 */
export function createRedis(url: string, options: RedisOptions): Redis {
  const { Redis: Client } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return new Client(url, options);
}
