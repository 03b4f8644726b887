import { ConfigService } from '@nestjs/config';
import { type Config, loadConfig } from '../config/config.js';
import { NistPasswordPolicy } from './nist-password.policy.js';
import { PasswordPolicy } from './password.policy.js';

describe(NistPasswordPolicy.name, () => {
  const sut = new NistPasswordPolicy(
    new ConfigService<Config, true>(
      loadConfig({
        NODE_ENV: 'test',
        APP_PUBLIC_URL: 'https://gatehouse.example',
        PASSWORD_MIN_LENGTH: '10',
      }),
    ),
  );
  const account = { email: 'ada.lovelace@example.test', username: 'countess' };

  it('should be the PasswordPolicy a team can replace', () => {
    expect(sut).toBeInstanceOf(PasswordPolicy);
  });

  it('should accept a long passphrase with no composition rules', () => {
    expect(sut.problem('violet kettle drifts at noon', account)).toBeNull();
  });

  it('should count code points, not UTF-16 units or bytes, after NFKC', () => {
    // Nine emoji are 18 UTF-16 units and 36 bytes, but nine characters: one short of the minimum.
    expect(sut.problem('🐙'.repeat(9), account)).toBe('must be at least 10 characters');
    expect(sut.problem('🐙'.repeat(10), account)).toBeNull();
    // Full-width letters fold to ASCII under NFKC, so this is the common "password123".
    expect(sut.problem('ｐａｓｓｗｏｒｄ１２３', account)).toBe(
      'is too common; choose a less guessable password',
    );
  });

  it('should refuse more than 128 characters', () => {
    expect(sut.problem('x'.repeat(128), account)).toBeNull();
    expect(sut.problem('x'.repeat(129), account)).toBe('must be at most 128 characters');
  });

  it('should refuse a common password whatever its case', () => {
    expect(sut.problem('Password123', account)).toBe('is too common; choose a less guessable password');
  });

  it('should refuse the account’s own email, its local part and its username', () => {
    expect(sut.problem('Ada.Lovelace@example.test', account)).toBe('must not be your email address');
    expect(sut.problem('ada.lovelace', account)).toBe('must not be your email address');
    expect(sut.problem('Countess-Of-Lovelace', { ...account, username: 'countess-of-lovelace' })).toBe(
      'must not be your username',
    );
  });

  it('should throw 400 VALIDATION_FAILED naming the field from assertAcceptable', () => {
    expect(() => sut.assertAcceptable('short', account, 'newPassword')).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        errors: [{ field: 'newPassword', message: 'newPassword must be at least 10 characters' }],
      }) as Error,
    );
    expect(() => sut.assertAcceptable('violet kettle drifts at noon', account)).not.toThrow();
  });
});
