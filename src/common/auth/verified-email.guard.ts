import {
  applyDecorators,
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  UseGuards,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { ApiProblem } from '../openapi.js';
import { AppException } from '../problem.js';
import type { Config } from '../../config/config.js';
import type { AuthUser } from './auth-user.js';

/**
 * Lets a request through only when the caller's email is verified, unless AUTH_REQUIRE_VERIFIED_EMAIL
 * is off. Runs after the global access-token guard, so `request.user` is the live caller.
 */
@Injectable()
export class VerifiedEmailGuard implements CanActivate {
  private readonly required: boolean;

  constructor(config: ConfigService<Config, true>) {
    this.required = config.getOrThrow('auth', { infer: true }).requireVerifiedEmail;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.required) {
      return true;
    }
    const { user } = context.switchToHttp().getRequest<FastifyRequest & { user?: AuthUser }>();
    if (!user?.isVerified) {
      throw new AppException(
        HttpStatus.FORBIDDEN,
        'EMAIL_NOT_VERIFIED',
        'Verify your email address before using this resource.',
      );
    }
    return true;
  }
}

/** Requires a verified email (when configured) and documents the 403 it can answer. */
export const RequireVerifiedEmail = () =>
  applyDecorators(
    UseGuards(VerifiedEmailGuard),
    ApiProblem(403, ['EMAIL_NOT_VERIFIED'], { description: 'the caller’s email is not verified yet' }),
  );
