import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { AuthUser } from './auth-user.js';

export const IS_PUBLIC = 'gatehouse:isPublic';

/** Opts a route out of the global access-token guard. Everything else needs a live session. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/**
 * Documents a route as needing a bearer token. The guard is global, so this cannot leave a route open;
 * it only keeps the OpenAPI document honest.
 */
export const Authenticated = () =>
  applyDecorators(
    ApiBearerAuth(),
    ApiUnauthorizedResponse({
      description: 'Missing, invalid or revoked access token (code UNAUTHENTICATED).',
    }),
  );

export const CurrentUser = createParamDecorator((_data: unknown, ctx: ExecutionContext): AuthUser => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest & { user?: AuthUser }>();
  if (!request.user) {
    // Only reachable if a @Public() route asks for the user: a programming error, not a client one.
    throw new Error('CurrentUser used on a route without an authenticated user');
  }
  return request.user;
});
