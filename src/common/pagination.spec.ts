import { decodeCursor, encodeCursor } from './pagination.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

describe('cursor', () => {
  it('should round-trip an INT id as a number and a BIGINT id as a string', () => {
    expect(decodeCursor(encodeCursor(42))).toBe(42);
    expect(decodeCursor(encodeCursor('18446744073709551615'))).toBe('18446744073709551615');
  });

  it('should be opaque base64url', () => {
    expect(encodeCursor(42)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['an empty string', ''],
    ['non-base64url characters', 'abc+/='],
    ['base64 of text', b64('hello')],
    ['JSON null', b64('null')],
    ['a JSON array', b64('["1"]')],
    ['a numeric id', b64('{"id":1}')],
    ['a zero id', b64('{"id":"0"}')],
    ['a negative id', b64('{"id":"-1"}')],
    ['a leading zero', b64('{"id":"01"}')],
    ['an id with SQL', b64('{"id":"1 OR 1=1"}')],
    ['an id past 20 digits', b64(`{"id":"${'9'.repeat(21)}"}`)],
    ['an extra key', b64('{"id":"1","userId":"2"}')],
    ['an over-long cursor', 'A'.repeat(129)],
  ])('should refuse %s with CURSOR_INVALID', (_label, cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(expect.objectContaining({ code: 'CURSOR_INVALID' }));
  });
});
