import { plainToInstance } from 'class-transformer';
import { IsInt, validateSync } from 'class-validator';
import { IsIsoDateTime, PlainInteger } from './validators.js';

class When {
  @IsIsoDateTime()
  at!: unknown;
}

class Count {
  @PlainInteger()
  @IsInt()
  n!: unknown;
}

const validDate = (at: unknown) => validateSync(plainToInstance(When, { at })).length === 0;

describe(IsIsoDateTime.name, () => {
  it.each([
    '2030-01-31T17:00:00Z',
    '2030-01-31T17:00:00.123z',
    '2030-01-31T17:00:00+01:00',
    '2030-01-31T17:00:00-0530',
    '2030-01-31T17:00+01:00',
    '2030-01-31',
  ])('should take %p: an instant, or a date (midnight UTC)', (at) => {
    expect(validDate(at)).toBe(true);
  });

  it.each([
    // A time without its offset means a different instant in every time zone the server may run in.
    '2030-01-31T17:00:00',
    '2030-01-31T17:00:00.000',
    '2030-01-31T17:00',
    // A signed year is read in the server's time zone too: 05:00Z in New York, the day before in Kathmandu.
    '+2030-01-31',
    '-2030-01-31',
    '+002030-01-31T00:00:00Z',
    '2030',
    '2030-01',
    '2030-01-31T24:00:00Z',
    '2030-01-31T17:00:00+01',
    '2030-02-30T10:00:00Z',
    '0999-12-31T00:00:00Z',
    'tomorrow',
    1_700_000_000_000,
  ])('should refuse %p', (at) => {
    expect(validDate(at)).toBe(false);
  });
});

describe(PlainInteger.name, () => {
  it.each([
    ['1', 1],
    ['20', 20],
    ['4294967295', 4_294_967_295],
  ])('should turn %p into %p', (n, value) => {
    const count = plainToInstance(Count, { n });
    expect(count.n).toBe(value);
    expect(validateSync(count)).toEqual([]);
  });

  it.each(['1e1', '0x10', '010', ' 5', '5 ', '', '1.0', '-1', '12345678901'])(
    'should leave %p a string, which IsInt refuses',
    (n) => {
      const count = plainToInstance(Count, { n });
      expect(count.n).toBe(n);
      expect(validateSync(count)).toHaveLength(1);
    },
  );
});
