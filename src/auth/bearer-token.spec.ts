import { ACCESS_TOKEN_MAX_LENGTH, bearerToken } from './bearer-token.js';

const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln_-';
const from = (authorization?: string | string[]) => bearerToken({ headers: { authorization } as never });

describe(bearerToken.name, () => {
  it('should take the JWT of a Bearer header, the scheme in any case and with any number of spaces', () => {
    expect(from(`Bearer ${jwt}`)).toBe(jwt);
    expect(from(`bearer ${jwt}`)).toBe(jwt);
    expect(from(`BEARER   ${jwt}  `)).toBe(jwt);
  });

  it('should find no token in anything else', () => {
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      jwt,
      `Basic ${jwt}`,
      `Bearer\t${jwt}`,
      `Bearer ${jwt} more`,
      `Bearer ${jwt}.four`,
      `Bearer a.b`,
      `Bearer ${jwt}=`,
      `Bearer ${'a'.repeat(ACCESS_TOKEN_MAX_LENGTH)}.b.c`,
      'a'.repeat(16_300),
      `Bearer ${'a.'.repeat(8_000)}`,
      // Under the length guard, so the pattern itself refuses them.
      'a'.repeat(2_000),
      `Bearer ${'a'.repeat(2_000)}`,
      `Bearer${' '.repeat(2_000)}a.b.c x`,
    ]) {
      expect(from(header)).toBeNull();
    }
  });

  it('should take the longest token Gatehouse issues', () => {
    const longest = `${'a'.repeat(ACCESS_TOKEN_MAX_LENGTH - 4)}.b.c`;
    expect(longest).toHaveLength(ACCESS_TOKEN_MAX_LENGTH);
    expect(from(`Bearer ${longest}`)).toBe(longest);
  });
});
