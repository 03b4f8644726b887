import type { ArgumentMetadata } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Max, Min, ValidateBy } from 'class-validator';
import { AppValidationPipe } from './validation.js';

class PageQuery {
  @IsOptional()
  @IsString()
  cursor?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit: number = 20;
}

/** A query DTO whose defaults fail its own rules: an empty query is refused. */
class BrokenDefaultQuery {
  @IsInt()
  @Max(10)
  limit: number = 20;
}

class TaggedQuery {
  @IsOptional()
  @IsIn(['a', 'b'], { each: true })
  tags: string[] = [];
}

let lookups = 0;
let lookedUpQueries = 0;

/** A query with a rule of its own, which could read the database or the clock: a lookup is counted. */
class LookedUpQuery {
  @IsOptional()
  @ValidateBy({ name: 'isKnownTeam', validator: { validate: () => ((lookups += 1), true) } })
  team: string = 'core';

  constructor() {
    lookedUpQueries += 1;
  }
}

let ticks = 0;

/** A default that changes from one request to the next, like an initializer reading the clock. */
class MovingDefaultQuery {
  @IsInt()
  @Max(3)
  until: number = (ticks += 1);
}

let clock = 1;

/** A default read from a clock that stands still between the test's steps. */
class ClockDefaultQuery {
  @IsInt()
  @Max(3)
  until: number = clock;
}

const query = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({ type: 'query', metatype });
const emptyQuery = () => Object.create(null) as Record<string, unknown>;

describe('AppValidationPipe on an empty query', () => {
  const pipe = new AppValidationPipe();

  it('should give a new DTO with the defaults each time, which a handler may change freely', async () => {
    const first = (await pipe.transform(emptyQuery(), query(PageQuery))) as PageQuery;
    first.limit = 99;
    first.cursor = 'changed';
    const second = (await pipe.transform(emptyQuery(), query(PageQuery))) as PageQuery;
    const third = (await pipe.transform({}, query(PageQuery))) as PageQuery;

    for (const dto of [second, third]) {
      expect(dto).toBeInstanceOf(PageQuery);
      expect(dto).toEqual(Object.assign(new PageQuery(), { limit: 20, cursor: undefined }));
      expect(Object.keys(dto)).toEqual(['cursor', 'limit']);
    }
    expect(second).not.toBe(third);
  });

  it('should still validate and transform a query with parameters, after empty ones', async () => {
    await pipe.transform(emptyQuery(), query(PageQuery));
    await expect(pipe.transform({ limit: '5' }, query(PageQuery))).resolves.toEqual(
      Object.assign(new PageQuery(), { limit: 5 }),
    );
    await expect(pipe.transform({ limit: '500' }, query(PageQuery))).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(pipe.transform({ other: 'x' }, query(PageQuery))).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });

  it('should refuse an empty query every time when the defaults fail the rules', async () => {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      await expect(pipe.transform(emptyQuery(), query(BrokenDefaultQuery))).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
      });
    }
  });

  it('should never hand two requests the same default array', async () => {
    const first = (await pipe.transform(emptyQuery(), query(TaggedQuery))) as TaggedQuery;
    first.tags.push('a');
    const second = (await pipe.transform(emptyQuery(), query(TaggedQuery))) as TaggedQuery;

    expect(second.tags).toEqual([]);
    expect(second.tags).not.toBe(first.tags);
  });

  it('should pass a query typed as a plain object on as it came', async () => {
    const value = {};
    await pipe.transform({}, query(Object));

    await expect(pipe.transform(value, query(Object))).resolves.toBe(value);
  });

  it('should work out a default that changes anew on each request, and refuse it once it fails', async () => {
    const seen: number[] = [];
    let refused: unknown;
    for (let attempt = 0; attempt < 6 && refused === undefined; attempt += 1) {
      try {
        seen.push(
          ((await pipe.transform(emptyQuery(), query(MovingDefaultQuery))) as MovingDefaultQuery).until,
        );
      } catch (error) {
        refused = error;
      }
    }

    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(refused).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('should validate a default again once it has changed since its verdict', async () => {
    clock = 2;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      await expect(pipe.transform(emptyQuery(), query(ClockDefaultQuery))).resolves.toEqual(
        Object.assign(new ClockDefaultQuery(), { until: 2 }),
      );
    }
    clock = 3;
    await expect(pipe.transform(emptyQuery(), query(ClockDefaultQuery))).resolves.toMatchObject({ until: 3 });
    clock = 9;
    await expect(pipe.transform(emptyQuery(), query(ClockDefaultQuery))).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });

  it('should validate an empty query once per class when its rules are class-validator own', async () => {
    const cachedPipe = new AppValidationPipe();
    const validate = jest.spyOn(cachedPipe as unknown as { validate: () => unknown }, 'validate');
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await cachedPipe.transform(emptyQuery(), query(PageQuery));
    }

    expect(validate).toHaveBeenCalledTimes(1);
  });

  it('should run a rule of the class own on every empty query, and decide that only once', async () => {
    const before = lookups;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await expect(pipe.transform(emptyQuery(), query(LookedUpQuery))).resolves.toMatchObject({
        team: 'core',
      });
    }

    const constructed = lookedUpQueries;
    await pipe.transform(emptyQuery(), query(LookedUpQuery));

    expect(lookups - before).toBe(4);
    // The transform makes the one instance; the checks that would keep a verdict are not run again.
    expect(lookedUpQueries - constructed).toBe(1);
  });

  it('should validate in full a query that is an empty array, not take it for an empty query', async () => {
    await pipe.transform(emptyQuery(), query(PageQuery));

    await expect(pipe.transform([], query(PageQuery))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
