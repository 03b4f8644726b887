import {
  type ArgumentMetadata,
  HttpStatus,
  type Type,
  ValidationPipe,
  type ValidationError,
} from '@nestjs/common';
import { AppException, type FieldError } from './problem.js';

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** A query object with no parameters in it (Fastify's parser gives one even for a bare path). */
function isEmptyQuery(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  for (const _ in value) {
    return false;
  }
  return true;
}

/** The own fields of a validated DTO, if every one is a primitive: copying them makes an equal DTO. */
function primitiveFields(dto: unknown): Readonly<Record<string, unknown>> | undefined {
  if (typeof dto !== 'object' || dto === null) {
    return undefined;
  }
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(dto)) {
    if (typeof value === 'object' ? value !== null : typeof value === 'function') {
      return undefined;
    }
    fields[key] = value;
  }
  return Object.freeze(fields);
}

/**
 * The global pipe: unknown fields are rejected, types are transformed, and every failure becomes one
 * 400 VALIDATION_FAILED problem listing each field. A body that is not a JSON object (an array, a
 * string, null) is refused before class-validator sees it.
 *
 * A query DTO given no parameters at all (the first page of a list, the commonest request there is)
 * always comes out the same: its defaults. That verdict is worked out once per DTO class, by the full
 * transform and validation, and each later empty query gets a new instance with those fields, without
 * class-transformer and class-validator walking the class's metadata again (~9 KB of garbage and
 * several µs per list request). Only a verdict that passed and holds nothing but primitives is kept:
 * a failing one is worked out, and thrown, every time, and a default array or object is never shared.
 */
export class AppValidationPipe extends ValidationPipe {
  private readonly emptyQueryDefaults = new WeakMap<Type<object>, Readonly<Record<string, unknown>>>();

  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
      exceptionFactory: (errors) =>
        new AppException(
          HttpStatus.BAD_REQUEST,
          'VALIDATION_FAILED',
          'The request is invalid.',
          flatten(errors),
        ),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype && metadata.metatype !== Object) {
      if (value === undefined) {
        value = {};
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new AppException(
          HttpStatus.BAD_REQUEST,
          'BODY_NOT_OBJECT',
          'The request body must be a JSON object.',
        );
      }
    }
    if (
      metadata.type === 'query' &&
      metadata.data === undefined &&
      metadata.metatype &&
      isEmptyQuery(value)
    ) {
      return this.emptyQuery(value, metadata, metadata.metatype as Type<object>);
    }
    return super.transform(value, metadata);
  }

  private async emptyQuery(
    value: unknown,
    metadata: ArgumentMetadata,
    metatype: Type<object>,
  ): Promise<unknown> {
    const defaults = this.emptyQueryDefaults.get(metatype);
    if (defaults) {
      return Object.assign(new metatype(), defaults);
    }
    const dto: unknown = await super.transform(value, metadata);
    // The pipe made a DTO of the class (a query typed Object or String is passed on as it came).
    const fields = dto !== value && dto instanceof metatype ? primitiveFields(dto) : undefined;
    if (fields) {
      this.emptyQueryDefaults.set(metatype, fields);
    }
    return dto;
  }
}
