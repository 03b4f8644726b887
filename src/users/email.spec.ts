import { EMAIL_INPUT_MAX, normalizeEmail } from './email.js';

describe(normalizeEmail.name, () => {
  it('should trim, compose (NFC) and lower-case an address', () => {
    expect(normalizeEmail('  A\u0308DA@Example.COM ')).toBe('\u00e4da@example.com');
  });

  it('should normalise an address of 254 code points sent decomposed, three units each', () => {
    // U+1E69 (s with a dot below and a dot above) decomposes into three code points.
    const decomposed = `${'s\u0323\u0307'.repeat(247)}@b.test`;
    expect(decomposed.length).toBeLessThanOrEqual(EMAIL_INPUT_MAX);
    expect(normalizeEmail(decomposed)).toBe(`${'\u1e69'.repeat(247)}@b.test`);
  });

  it('should leave a string too long to be an address as it is, for validation to refuse', () => {
    const marks = `a${'\u0345\u0301'.repeat(EMAIL_INPUT_MAX)}@b.test`;
    expect(normalizeEmail(marks)).toBe(marks);
  });
});
