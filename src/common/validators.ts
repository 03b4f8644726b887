import { Transform } from 'class-transformer';
import { isISO8601, ValidateBy, ValidateIf, type ValidationOptions } from 'class-validator';

/** DATETIME's range on MySQL; a date outside it would be a database error, so it is a 400 here. */
const MIN_TIME = Date.UTC(1000, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * An ISO 8601 date or date-time string (e.g. `2030-01-31T17:00:00Z`) that names a real day within
 * DATETIME's range. The value stays a string; services turn it into a Date.
 */
export const IsIsoDateTime = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isIsoDateTime',
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string' || !isISO8601(value, { strict: true, strictSeparator: true })) {
            return false;
          }
          const time = Date.parse(value);
          return Number.isFinite(time) && time >= MIN_TIME && time <= MAX_TIME;
        },
        defaultMessage: (args) =>
          `${args?.property ?? 'value'} must be an ISO 8601 date-time such as 2030-01-31T17:00:00Z`,
      },
    },
    options,
  );

/**
 * Optional, but not nullable: absent is fine, `null` is validated (and so refused) like any other
 * wrong type. `@IsOptional()` would let `null` through to a NOT NULL column.
 */
export const IsOptionalNotNull = () => ValidateIf((_object, value) => value !== undefined);

/** Trims surrounding whitespace of a string before validation; other types pass through unchanged. */
export const Trim = () =>
  Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));
