import { type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DECORATORS } from '@nestjs/swagger';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiProblem, RATE_LIMIT_HEADERS, RATE_LIMITED } from '../common/openapi.js';
import { AppException } from '../common/problem.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { Throttler } from './throttlers.js';

/**
 * @nestjs/throttler's guard with Gatehouse's answers: the limits of ./throttlers.ts, reported in the
 * IETF RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers-09, one list item
 * per named limit) rather than throttler's `X-RateLimit-*-<name>` headers, and a 429 that is our
 * problem+json `RATE_LIMITED` with a plain `Retry-After`, counted in gatehouse_throttle_hits_total.
 */
@Injectable()
export class AuthThrottlerGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly metrics: MetricsService,
  ) {
    super(options, storage, reflector);
  }

  protected override async handleRequest({
    context,
    limit,
    ttl,
    throttler,
    blockDuration,
    getTracker,
    generateKey,
  }: ThrottlerRequest): Promise<boolean> {
    const { req, res } = this.getRequestResponse(context);
    const name = throttler.name ?? 'default';
    const tracker = await getTracker(req, context);
    const key = generateKey(context, tracker, name);
    const record = await this.storageService.increment(key, ttl, limit, blockDuration, name);
    const remaining = record.isBlocked ? 0 : Math.max(0, limit - record.totalHits);
    const resetIn = Math.max(0, record.isBlocked ? record.timeToBlockExpire : record.timeToExpire);
    const reply = res as FastifyReply;
    appendListItem(reply, 'RateLimit-Policy', `"${name}";q=${limit};w=${Math.ceil(ttl / 1000)}`);
    appendListItem(reply, 'RateLimit', `"${name}";r=${remaining};t=${resetIn}`);
    if (record.isBlocked) {
      await this.throwThrottlingException(context, { ...record, limit, ttl, key, tracker });
    }
    return true;
  }

  protected override throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    this.metrics.throttleHit(request.routeOptions.url ?? '(unmatched)');
    return Promise.reject(
      new AppException(
        HttpStatus.TOO_MANY_REQUESTS,
        'RATE_LIMITED',
        'Too many requests; slow down and try again later.',
        undefined,
        { 'Retry-After': String(Math.max(1, detail.timeToBlockExpire)) },
      ),
    );
  }
}

/** Both fields are Structured Field lists: a second limit on the route adds an item, never a second line. */
function appendListItem(reply: FastifyReply, field: string, item: string): void {
  const existing = reply.getHeader(field);
  reply.header(field, typeof existing === 'string' && existing.length > 0 ? `${existing}, ${item}` : item);
}

/** @nestjs/throttler's metadata key for `@SkipThrottle` (not exported from its index). */
const THROTTLER_SKIP = 'THROTTLER:SKIP';

type Handler = (...args: unknown[]) => unknown;

function isThrottled(controller: object, handler: Handler): boolean {
  return Object.values(Throttler).some(
    (name) =>
      !((Reflect.getMetadata(THROTTLER_SKIP + name, handler) ??
        Reflect.getMetadata(THROTTLER_SKIP + name, controller)) as boolean | undefined),
  );
}

/**
 * On a controller under AuthThrottlerGuard: documents, on every route at least one named limit
 * applies to (read from its `@SkipThrottle` metadata, so the document follows the configuration),
 * the 429 `RATE_LIMITED` with its `Retry-After`, and the RateLimit fields on every answer.
 */
export const ApiThrottled =
  (description: string): ClassDecorator =>
  (controller) => {
    const prototype = controller.prototype as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const handler = prototype[name];
      if (
        name === 'constructor' ||
        typeof handler !== 'function' ||
        !isThrottled(controller, handler as Handler)
      ) {
        continue;
      }
      ApiProblem(429, ['RATE_LIMITED'], { description, headers: RETRY_AFTER_HEADERS })(
        prototype,
        name,
        Object.getOwnPropertyDescriptor(prototype, name)!,
      );
      const extensions = (Reflect.getMetadata(DECORATORS.API_EXTENSION, handler) ?? {}) as Record<
        string,
        unknown
      >;
      Reflect.defineMetadata(DECORATORS.API_EXTENSION, { ...extensions, [RATE_LIMITED]: true }, handler);
    }
  };

/** What a 429 carries: when to retry, and (from the throttler) the state of each limit. */
export const RETRY_AFTER_HEADERS = {
  'Retry-After': {
    description: 'Seconds until a request can succeed again',
    required: true,
    schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 604_800 },
  },
  ...RATE_LIMIT_HEADERS,
} as const;
