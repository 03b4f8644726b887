import { createParamDecorator, type ExecutionContext, HttpStatus } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AppException } from './problem.js';

const POSITIVE_INT = /^[1-9][0-9]*$/;

/**
 * A positive whole number from the path, else 400 VALIDATION_FAILED naming the parameter: never a 500
 * from the database and never a silent 404 for "abc", "-1" or "1.5".
 */
export function parseId(value: unknown, field: string): number {
  const id = typeof value === 'string' && POSITIVE_INT.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(id)) {
    throw new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
      { field, message: `${field} must be a positive integer` },
    ]);
  }
  return id;
}

/**
 * `@IdParam() id: number` — the `:id` path parameter as a positive integer. A param decorator rather
 * than `@Param('id', pipe)`: the global ValidationPipe would first turn "1e3" or "0x10" into a Number,
 * and the pipe would then accept it; custom decorators get the raw string.
 */
export const IdParam = createParamDecorator((name: string | undefined, ctx: ExecutionContext): number => {
  const field = name ?? 'id';
  const params = ctx.switchToHttp().getRequest<FastifyRequest>().params as Record<string, unknown>;
  return parseId(params[field], field);
});
