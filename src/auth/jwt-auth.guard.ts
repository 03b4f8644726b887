import { type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { IS_PUBLIC } from '../common/auth/decorators.js';
import { unauthenticated } from '../common/auth/unauthenticated.js';
import { isDatabaseUnavailable } from '../common/dependency.js';

/** The global guard (APP_GUARD): every route needs a live access token unless marked @Public(). */
@Injectable()
export class JwtAuthGuard extends AuthGuard('jwt') {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [
      context.getHandler(),
      context.getClass(),
    ]);
    return isPublic ? true : super.canActivate(context);
  }

  override handleRequest<T>(err: unknown, user: T | false, _info: unknown, context: ExecutionContext): T {
    if (err || !user) {
      if (err instanceof Error && 'code' in err && err.code === 'UNAUTHENTICATED') {
        throw err;
      }
      // A session check that could not run is no verdict on the token: a 401 here would make every
      // client drop its tokens whenever the database blinks. The filter logs the cause.
      if (isDatabaseUnavailable(err)) {
        throw err;
      }
      const { authorization } = context.switchToHttp().getRequest<FastifyRequest>().headers;
      throw unauthenticated(typeof authorization === 'string' && authorization.trim().length > 0);
    }
    return user;
  }
}
