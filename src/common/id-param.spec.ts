import { parseId } from './id-param.js';

describe(parseId.name, () => {
  it('should accept a positive integer up to the largest id a row can have', () => {
    expect(parseId('42', 'id')).toBe(42);
    expect(parseId('4294967295', 'id')).toBe(4_294_967_295);
  });

  it.each(['', '0', '-1', '1.5', '1e3', '0x10', ' 1', '4294967296', '9007199254740993', 'abc'])(
    'should refuse %p with VALIDATION_FAILED naming the field',
    (value) => {
      expect(() => parseId(value, 'id')).toThrow(
        expect.objectContaining({
          code: 'VALIDATION_FAILED',
          errors: [expect.objectContaining({ field: 'id' })],
        }),
      );
    },
  );
});
