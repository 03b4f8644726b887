import { createParamDecorator, type ExecutionContext, HttpStatus } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiProblem, ID_MAXIMUM } from './openapi.js';
import { AppException } from './problem.js';
import { PLAIN_POSITIVE_INTEGER } from './validators.js';

/**
 * A whole number from 1 to ID_MAXIMUM from the path, else 400 VALIDATION_FAILED naming the parameter:
 * never a 500 from the database and never a silent 404 for "abc", "-1", "1.5" or an id past the
 * document's `maximum`, which no row can have.
 */
export function parseId(value: unknown, field: string): number {
  const id = typeof value === 'string' && PLAIN_POSITIVE_INTEGER.test(value) ? Number(value) : Number.NaN;
  if (!(id <= ID_MAXIMUM)) {
    throw new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
      { field, message: `${field} must be a positive integer no larger than ${ID_MAXIMUM}` },
    ]);
  }
  return id;
}

const idFromPath = createParamDecorator((field: string, ctx: ExecutionContext): number => {
  const params = ctx.switchToHttp().getRequest<FastifyRequest>().params as Record<string, unknown>;
  return parseId(params[field], field);
});

/**
 * `@IdParam() id: number` — the `:id` path parameter as a positive integer. A param decorator rather
 * than `@Param('id', pipe)`: the global ValidationPipe would first turn "1e3" or "0x10" into a Number,
 * and the pipe would then accept it; custom decorators get the raw string. It also documents the
 * parameter and its 400 on the route, so no route can take an id the OpenAPI document does not name.
 */
export const IdParam =
  (name = 'id'): ParameterDecorator =>
  (target, key, index) => {
    idFromPath(name)(target, key, index);
    const descriptor = Object.getOwnPropertyDescriptor(target, key!)!;
    ApiParam({
      name,
      required: true,
      description: 'A positive integer id.',
      schema: { type: 'integer', format: 'int64', minimum: 1, maximum: ID_MAXIMUM },
      example: 42,
    })(target, key!, descriptor);
    ApiProblem(400, ['VALIDATION_FAILED'], {
      description: `\`${name}\` is not a positive integer, or the input is invalid`,
    })(target, key!, descriptor);
  };
