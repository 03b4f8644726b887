import { exceedsJsonDepth } from './json-depth.js';

describe(exceedsJsonDepth.name, () => {
  it('should measure nesting of arrays and objects alike', () => {
    expect(exceedsJsonDepth('{"a":[{"b":[1]}]}', 4)).toBe(false);
    expect(exceedsJsonDepth('{"a":[{"b":[1]}]}', 3)).toBe(true);
    expect(exceedsJsonDepth('[[[[[[[[[[1]]]]]]]]]]', 8)).toBe(true);
  });

  it('should not count brackets inside strings, escaped quotes included', () => {
    expect(exceedsJsonDepth(JSON.stringify({ title: '[[[[[[[[[[{{{{{{{{' }), 1)).toBe(false);
    expect(exceedsJsonDepth(JSON.stringify({ title: 'a "quoted" [[[[[[ \\" [[[[' }), 1)).toBe(false);
  });

  it('should stop at the limit on a hostile body without recursing', () => {
    expect(exceedsJsonDepth(`{"email":${'['.repeat(45_000)}${']'.repeat(45_000)}}`)).toBe(true);
  });
});
