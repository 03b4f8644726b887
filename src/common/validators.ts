import { Transform } from 'class-transformer';
import { isEmail, isISO8601, ValidateBy, ValidateIf, type ValidationOptions } from 'class-validator';

/** DATETIME's range on MySQL; a date outside it would be a database error, so it is a 400 here. */
const MIN_TIME = Date.UTC(1000, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Longer than any ISO 8601 instant (`2030-01-31T17:00:00.123456789+05:30` is 35 characters). */
export const ISO_DATE_TIME_MAX_LENGTH = 64;

/**
 * The ISO 8601 shapes taken: a whole date, or a date and a time of day (hours 00-23, seconds and a
 * fraction optional) with its offset, `Z` or `±hh:mm` (`±hhmm` too). Everything else
 * isISO8601 allows is refused: a time without its offset, and a signed year (`+2030-01-31`), which
 * Date.parse does not read as its own format and takes in the server's time zone; the same request
 * stored a different instant on a host set to New York than on one in UTC. Year or month alone too.
 */
const DATE_TIME_SHAPE =
  /^\d{4}-\d{2}-\d{2}(?:[Tt](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;

/**
 * An ISO 8601 date or date-time string (e.g. `2030-01-31T17:00:00Z`) of DATE_TIME_SHAPE that names a
 * real day within DATETIME's range (isISO8601 checks the day: Date.parse reads `2030-02-30` as
 * 2 March). A date alone is midnight UTC. The value stays a string; services turn it into a Date.
 */
export const IsIsoDateTime = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isIsoDateTime',
      validator: {
        validate: (value: unknown) => {
          if (
            typeof value !== 'string' ||
            value.length > ISO_DATE_TIME_MAX_LENGTH ||
            !DATE_TIME_SHAPE.test(value) ||
            !isISO8601(value, { strict: true, strictSeparator: true })
          ) {
            return false;
          }
          const time = Date.parse(value);
          return Number.isFinite(time) && time >= MIN_TIME && time <= MAX_TIME;
        },
        defaultMessage: (args) =>
          `${args?.property ?? 'value'} must be an ISO 8601 date-time with its offset, such as 2030-01-31T17:00:00Z`,
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

/** A string's length in Unicode code points: the unit MySQL's utf8mb4 VARCHAR(n) and TEXT limits count. */
export function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) {
    count += 1;
  }
  return count;
}

/**
 * A string of `min`–`max` code points, checked in the unit its column counts. class-validator's
 * `Length`/`MaxLength` count neither U+FE0E/U+FE0F nor the second half of a surrogate pair, so 200
 * × "a" + U+FE0F passed as 200 and overflowed VARCHAR(200) on MySQL (issue 12, item 8).
 */
export const CodePointLength = (min: number, max: number, options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'codePointLength',
      constraints: [min, max],
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') {
            return false;
          }
          const length = codePointLength(value);
          return length >= min && length <= max;
        },
        defaultMessage: (args) => {
          const property = args?.property ?? 'value';
          const short = typeof args?.value === 'string' && codePointLength(args.value) < min;
          return short
            ? `${property} must be longer than or equal to ${min} characters`
            : `${property} must be shorter than or equal to ${max} characters`;
        },
      },
    },
    options,
  );

/** At most `max` code points (see CodePointLength). */
export const MaxCodePoints = (max: number, options?: ValidationOptions) => CodePointLength(0, max, options);

/**
 * An email address (class-validator's `isEmail`), refusing first a string with a lone surrogate:
 * validator.js throws `URIError` on one, and a thrown validator is a 500, not a 400.
 */
export const IsEmailAddress = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isEmail',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && !/\p{Cs}/u.test(value) && isEmail(value),
        defaultMessage: () => 'email must be an email address',
      },
    },
    options,
  );

/** A positive whole number in plain decimal, at most ten digits: exactly what Number() reads as written. */
export const PLAIN_POSITIVE_INTEGER = /^[1-9][0-9]{0,9}$/;

/**
 * A query parameter that is a plain positive decimal (at most ten digits) becomes a number; anything
 * else ("1e1", "0x10", "010", " 5", "") stays a string and fails `@IsInt()`. class-transformer's
 * `@Type(() => Number)` would take all of those, which the document's `integer` does not.
 */
export const PlainInteger = () =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && PLAIN_POSITIVE_INTEGER.test(value) ? Number(value) : value,
  );
