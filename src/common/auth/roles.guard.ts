import {
  applyDecorators,
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  SetMetadata,
  UseGuards,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ApiProblem } from '../openapi.js';
import { AppException } from '../problem.js';
import type { AuthUser, UserRole } from './auth-user.js';
import { Authenticated } from './decorators.js';
import { unauthenticated } from './unauthenticated.js';

export const ROLES = 'gatehouse:roles';

/**
 * Lets a request through only when the live caller (set by the global access-token guard) has one of
 * the route's roles. A route with no caller (a @Public() route that was also given @Roles) is refused
 * as unauthenticated rather than let through: a role check can never be switched off by accident.
 */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const roles = this.reflector.getAllAndOverride<UserRole[] | undefined>(ROLES, [
      context.getHandler(),
      context.getClass(),
    ]);
    const { user } = context.switchToHttp().getRequest<FastifyRequest & { user?: AuthUser }>();
    if (!user) {
      throw unauthenticated(false);
    }
    if (!roles || roles.length === 0 || !roles.includes(user.role)) {
      throw new AppException(
        HttpStatus.FORBIDDEN,
        'ADMIN_REQUIRED',
        'This resource is for operators: the caller lacks the required role.',
      );
    }
    return true;
  }
}

/**
 * `@Roles('admin')` on a controller or route: the role check, the bearer-auth documentation and the
 * documented 403 in one decorator, so a route cannot be documented as operator-only and left open.
 */
export const Roles = (...roles: [UserRole, ...UserRole[]]) =>
  applyDecorators(
    SetMetadata(ROLES, roles),
    UseGuards(RolesGuard),
    Authenticated(),
    ApiProblem(403, ['ADMIN_REQUIRED'], { description: `the caller is not ${roles.join(' or ')}` }),
  );
