import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiProblem } from '../openapi.js';
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
    ApiProblem(401, ['UNAUTHENTICATED'], {
      description: 'missing, invalid, expired or revoked access token',
      headers: {
        'WWW-Authenticate': {
          description: 'The RFC 6750 challenge; `error="invalid_token"` when a token was sent: refresh it.',
          required: true,
          schema: { type: 'string', maxLength: 256, pattern: '^Bearer ' },
        },
      },
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
