import { EMAIL_INPUT_MAX, normalizeEmail } from './email.js';

describe(normalizeEmail.name, () => {
  it('should trim, compose (NFC) and lower-case an address', () => {
    expect(normalizeEmail('  A\u0308DA@Example.COM ')).toBe('\u00e4da@example.com');
  });

  it('should normalise the longest address the table holds, sent decomposed', () => {
    const decomposed = `${'e\u0301'.repeat(240)}@b.test`;
    expect(decomposed.length).toBeLessThanOrEqual(EMAIL_INPUT_MAX);
    expect(normalizeEmail(decomposed)).toBe(`${'\u00e9'.repeat(240)}@b.test`);
  });

  it('should leave a string too long to be an address as it is, for validation to refuse', () => {
    const marks = `a${'\u0345\u0301'.repeat(EMAIL_INPUT_MAX)}@b.test`;
    expect(normalizeEmail(marks)).toBe(marks);
  });
});
