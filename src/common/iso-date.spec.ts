import { isoString } from './iso-date.js';

describe(isoString.name, () => {
  it('should print what toISOString prints, to the millisecond, for years 0000-9999', () => {
    const dates = [
      new Date(0),
      new Date(Date.UTC(2026, 11, 6, 9, 5, 7, 4)),
      new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 50)),
      new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)),
      new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)),
      new Date(Date.UTC(999, 5, 15, 12, 30, 0, 0)),
      new Date('0000-01-01T00:00:00.000Z'),
      new Date('0007-03-04T05:06:07.089Z'),
    ];
    for (let i = 0; i < 2000; i += 1) {
      dates.push(new Date(Math.floor(Math.random() * 253402300799999)));
    }
    for (const date of dates) {
      expect(isoString(date)).toBe(date.toISOString());
    }
  });

  it('should leave years outside 0000-9999 and invalid dates to toISOString', () => {
    for (const date of [new Date('-000001-01-01T00:00:00.000Z'), new Date(253402300800000)]) {
      expect(isoString(date)).toBe(date.toISOString());
    }
    expect(() => isoString(new Date(Number.NaN))).toThrow(RangeError);
  });
});
