import {
  type ArgumentMetadata,
  HttpStatus,
  type Type,
  ValidationPipe,
  type ValidationError,
} from '@nestjs/common';
import * as classValidator from 'class-validator';
import { AppException, type FieldError } from './problem.js';

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * A query object with no parameters in it, as Fastify's parser gives one even for a bare path: a plain
 * (or null-prototype) object with no keys of any kind. An array or another object is validated in full.
 */
function isEmptyQuery(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  return (prototype === null || prototype === Object.prototype) && Reflect.ownKeys(value).length === 0;
}

/**
 * How many parameters a query string may carry. The widest list route takes seven. Without a bound,
 * 4,700 unknown ones (15 kB) made a list request 13 times its cost: one validation error each, before
 * the answer lists the first 100. Past it, 400 QUERY_TOO_WIDE, as a JSON body past its own bound is
 * BODY_TOO_WIDE (src/common/json-shape.ts).
 */
export const QUERY_MAX_PARAMETERS = 32;

/** The names of class-validator's own rules (`isInt`, `max`, `isOptional` …), exported as IS_INT, MAX … */
const BUILT_IN_RULES: ReadonlySet<string> = new Set(
  Object.entries(classValidator)
    .filter(([key, value]) => /^[A-Z][A-Z0-9_]*$/.test(key) && typeof value === 'string')
    .map(([, value]) => value as string),
);

/**
 * Whether a class's verdict depends on nothing but its fields' values: every rule on it is one of
 * class-validator's own (pure functions of the value), with no `validateIf` of its own. A rule a team
 * writes (`@Validate`, a custom decorator) could read the database, the clock or the request.
 */
function hasOnlyBuiltInRules(metatype: Type<object>): boolean {
  const rules = classValidator.getMetadataStorage().getTargetValidationMetadatas(metatype, '', true, false);
  return rules.every(
    (rule) =>
      typeof rule.name === 'string' &&
      BUILT_IN_RULES.has(rule.name) &&
      (rule.type !== 'conditionalValidation' || rule.name === classValidator.IS_OPTIONAL) &&
      !(rule as { validateIf?: unknown }).validateIf,
  );
}

/** The own fields of a validated DTO, if every one is a primitive; undefined otherwise. */
function primitiveFields(dto: object): Readonly<Record<string, unknown>> | undefined {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(dto)) {
    if (typeof value === 'object' ? value !== null : typeof value === 'function') {
      return undefined;
    }
    fields[key] = value;
  }
  return Object.freeze(fields);
}

/** Whether a new DTO has exactly these fields, with these values. */
function hasFields(dto: object, fields: Readonly<Record<string, unknown>>): boolean {
  const keys = Object.keys(dto);
  if (keys.length !== Object.keys(fields).length) {
    return false;
  }
  for (const key of keys) {
    if (!Object.hasOwn(fields, key) || !Object.is((dto as Record<string, unknown>)[key], fields[key])) {
      return false;
    }
  }
  return true;
}

/**
 * The global pipe: unknown fields are rejected, types are transformed, and every failure becomes one
 * 400 VALIDATION_FAILED problem listing each field. A body that is not a JSON object (an array, a
 * string, null) is refused before class-validator sees it.
 *
 * A query DTO given no parameters at all (the first page of a list, the commonest request there is)
 * is its class's defaults, as `new Dto()` makes them. The verdict on them is worked out once per class,
 * by the full transform and validation; a later empty query gets `new Dto()` without class-transformer
 * and class-validator walking the class's metadata again (~9 KB of garbage and several µs per list
 * request), if that instance has the very fields the verdict was given. It is kept only when it passed,
 * when the transform added or changed nothing, when every field is a primitive, and when every rule on
 * the class is one of class-validator's own: a failing verdict is worked out, and thrown, every time; a
 * default that changes (an initializer reading the clock) is validated every time; and a class with a
 * rule of its own (which could read the database or the clock) is validated every time.
 */
export class AppValidationPipe extends ValidationPipe {
  private readonly emptyQueryDefaults = new WeakMap<Type<object>, Readonly<Record<string, unknown>>>();
  /** Classes whose empty query was found not to keep a verdict: decided once, validated in full. */
  private readonly alwaysValidated = new WeakSet<Type<object>>();

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
      (metadata.type === 'body' || metadata.type === 'query') &&
      typeof value === 'object' &&
      value !== null
    ) {
      const keys = Object.keys(value);
      if (metadata.type === 'query' && keys.length > QUERY_MAX_PARAMETERS) {
        throw new AppException(
          HttpStatus.BAD_REQUEST,
          'QUERY_TOO_WIDE',
          `The query string has more than ${QUERY_MAX_PARAMETERS} parameters.`,
        );
      }
      // Keys naming a member every object inherits (`constructor`, `toString`, `__proto__` …):
      // class-transformer does not copy them onto the DTO, so the whitelist never saw them and they
      // were dropped without a word, where any other unknown field is a 400.
      const inherited =
        metadata.data === undefined && metadata.metatype && metadata.metatype !== Object
          ? keys.filter((key) => key in Object.prototype)
          : [];
      if (inherited.length > 0) {
        // Listed with whatever else fails, as one answer names every failed check.
        const others = await super.transform(value, metadata).then(
          () => [],
          (error: unknown) => {
            if (error instanceof AppException && error.code === 'VALIDATION_FAILED') {
              return error.errors ?? [];
            }
            throw error;
          },
        );
        throw new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
          ...others,
          ...inherited.map((field) => ({ field, message: `property ${field} should not exist` })),
        ]);
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
    if (this.alwaysValidated.has(metatype)) {
      return super.transform(value, metadata);
    }
    const verdict = this.emptyQueryDefaults.get(metatype);
    if (verdict) {
      const defaults = new metatype();
      if (hasFields(defaults, verdict)) {
        return defaults;
      }
      return super.transform(value, metadata);
    }
    // A failing verdict throws here, before any decision: it is worked out again next time.
    const dto: unknown = await super.transform(value, metadata);
    // The pipe made a DTO of the class (a query typed Object or String is passed on as it came).
    const fields = dto !== value && dto instanceof metatype ? primitiveFields(dto) : undefined;
    if (fields && hasFields(new metatype(), fields) && hasOnlyBuiltInRules(metatype)) {
      this.emptyQueryDefaults.set(metatype, fields);
    } else {
      // Without this, every empty query of such a class would also pay for the checks above.
      this.alwaysValidated.add(metatype);
    }
    return dto;
  }
}
