import { jsonShapeFault } from './json-shape.js';

const deep = (depth: number) => ({ depth, items: 1000 });
const wide = (items: number) => ({ depth: 100, items });

describe(jsonShapeFault.name, () => {
  it('should measure nesting of arrays and objects alike', () => {
    expect(jsonShapeFault('{"a":[{"b":[1]}]}', deep(4))).toBeUndefined();
    expect(jsonShapeFault('{"a":[{"b":[1]}]}', deep(3))).toBe('BODY_TOO_DEEP');
    expect(jsonShapeFault('[[[[[[[[[[1]]]]]]]]]]')).toBe('BODY_TOO_DEEP');
  });

  it('should not count brackets inside strings, escaped quotes included', () => {
    expect(jsonShapeFault(JSON.stringify({ title: '[[[[[[[[[[{{{{{{{{' }), deep(1))).toBeUndefined();
    expect(jsonShapeFault(JSON.stringify({ title: 'a "quoted" [[[[[[ \\" [[[[' }), deep(1))).toBeUndefined();
  });

  it('should stop at the limit on a hostile body without recursing', () => {
    expect(jsonShapeFault(`{"email":${'['.repeat(45_000)}${']'.repeat(45_000)}}`)).toBe('BODY_TOO_DEEP');
  });

  it('should count the members and elements of every object and array together', () => {
    const body = JSON.stringify({ a: 1, b: [1, 2, 3], c: { d: 'x', e: [] }, f: {} });
    // a, b, c, f; 1, 2, 3; d, e: nine, whatever the white space
    expect(jsonShapeFault(body, wide(9))).toBeUndefined();
    expect(jsonShapeFault(body, wide(8))).toBe('BODY_TOO_WIDE');
    expect(jsonShapeFault(JSON.stringify(JSON.parse(body), null, 2), wide(9))).toBeUndefined();
    expect(jsonShapeFault(JSON.stringify(JSON.parse(body), null, '\t'), wide(8))).toBe('BODY_TOO_WIDE');
    expect(jsonShapeFault('{ }', wide(0))).toBeUndefined();
    expect(jsonShapeFault('[ [ ] , { } ]', wide(2))).toBeUndefined();
    expect(jsonShapeFault('[ [ ] , { } ]', wide(1))).toBe('BODY_TOO_WIDE');
  });

  it('should not count commas or colons inside strings', () => {
    expect(jsonShapeFault(JSON.stringify({ title: ',,,,:::,"\\,' }), wide(1))).toBeUndefined();
  });

  it('should take 256 members and elements by default, and refuse 257 or 9,000 unknown keys', () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, [i]]));
    expect(jsonShapeFault(JSON.stringify(keys(128)))).toBeUndefined(); // 128 members + 128 elements
    expect(jsonShapeFault(JSON.stringify({ ...keys(128), extra: 1 }))).toBe('BODY_TOO_WIDE');
    const unknown = Object.fromEntries(Array.from({ length: 9000 }, (_, i) => [`k${i}`, 1]));
    expect(jsonShapeFault(JSON.stringify(unknown))).toBe('BODY_TOO_WIDE');
  });
});
