import { applyDecorators, type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiTooManyRequestsResponse } from '@nestjs/swagger';
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
import { AppException } from '../common/problem.js';
import { MetricsService } from '../metrics/metrics.service.js';

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

/** Documents the 429 a throttled route can answer, with the fields it carries. */
export const ApiThrottled = (description: string) =>
  applyDecorators(
    ApiTooManyRequestsResponse({
      description,
      headers: {
        'Retry-After': {
          description: 'Seconds until the limit lets a request through again',
          schema: { type: 'integer' },
        },
        RateLimit: {
          description: 'Per limit on this route: `"<name>";r=<remaining>;t=<seconds until reset>`',
          schema: { type: 'string' },
        },
        'RateLimit-Policy': {
          description: 'Per limit on this route: `"<name>";q=<quota>;w=<window seconds>`',
          schema: { type: 'string' },
        },
      },
    }),
  );
