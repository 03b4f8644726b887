import type { ExecutionContext } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ThrottlerModule, type ThrottlerModuleOptions } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import type { AuthUser } from '../common/auth/auth-user.js';
import { clientKey } from '../common/client-key.js';
import type { Config } from '../config/config.js';
import { normalizeEmail } from '../users/email.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';

/**
 * The named limits AuthThrottlerGuard applies (DESIGN §5), each per route and per window of
 * AUTH_THROTTLE_WINDOW. A route opts out of one with `@SkipThrottle({ [Throttler.email]: true })`.
 */
export const Throttler = {
  /** Per signed-in account: routes that check a password again (a stolen access token must not guess at leisure). */
  account: 'account',
  /** Per client IP, as Fastify resolves it (X-Forwarded-For only under TRUST_PROXY); IPv6 per /64. */
  ip: 'ip',
  /** Per email address named in the body, known or not, so a 429 says nothing about who has an account. */
  email: 'email',
} as const;

/** `@SkipThrottle(NOT_THROTTLED)`: a route under the guard that no limit applies to. */
export const NOT_THROTTLED = { [Throttler.account]: true, [Throttler.ip]: true, [Throttler.email]: true };

function requestOf(context: ExecutionContext): FastifyRequest {
  return context.switchToHttp().getRequest<FastifyRequest>();
}

function userOf(request: FastifyRequest): AuthUser | undefined {
  return (request as FastifyRequest & { user?: AuthUser }).user;
}

/** The guard runs before validation: anything but a non-empty string is "no email" here. */
function emailOf(request: FastifyRequest): string | null {
  const body = request.body as { email?: unknown } | undefined;
  return typeof body?.email === 'string' && body.email.length > 0 ? normalizeEmail(body.email) : null;
}

export function throttlerOptions(auth: Config['auth']): ThrottlerModuleOptions {
  const ttl = auth.throttleWindowMs;
  return {
    storage: auth.redisUrl ? new RedisThrottlerStorage(auth.redisUrl) : undefined,
    // Checked in this order; the first one over its limit answers 429 and the later ones are not counted.
    throttlers: [
      {
        name: Throttler.account,
        ttl,
        limit: auth.throttleEmailLimit,
        skipIf: (context) => userOf(requestOf(context)) === undefined,
        getTracker: (request) => String(userOf(request as FastifyRequest)?.id),
      },
      {
        name: Throttler.ip,
        ttl,
        limit: auth.throttleIpLimit,
        getTracker: (request) => clientKey((request as FastifyRequest).ip),
      },
      {
        name: Throttler.email,
        ttl,
        limit: auth.throttleEmailLimit,
        skipIf: (context) => emailOf(requestOf(context)) === null,
        // Keys are hashed with the route before they reach the storage: no address sits in Redis.
        getTracker: (request) => emailOf(request as FastifyRequest) ?? '',
      },
    ],
  };
}

/** Global, so every module's routes can use the guard with one storage. */
export const AuthThrottlerModule = ThrottlerModule.forRootAsync({
  inject: [ConfigService],
  useFactory: (config: ConfigService<Config, true>) =>
    throttlerOptions(config.getOrThrow('auth', { infer: true })),
});
