import { type ArgumentMetadata, HttpStatus, ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException, type FieldError } from './problem.js';

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * The global pipe: unknown fields are rejected, types are transformed, and every failure becomes one
 * 400 VALIDATION_FAILED problem listing each field. A body that is not a JSON object (an array, a
 * string, null) is refused before class-validator sees it.
 */
export class AppValidationPipe extends ValidationPipe {
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
    return super.transform(value, metadata);
  }
}
