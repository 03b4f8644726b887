import { ConfigService } from '@nestjs/config';
import { dictionary } from '@zxcvbn-ts/language-common';
import { type Config, loadConfig } from '../config/config.js';
import { isCommonPassword, NistPasswordPolicy } from './nist-password.policy.js';
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
    expect(sut.problem(`${'🐙🦑'.repeat(4)}🐙`, account)).toBe('must be at least 10 characters');
    expect(sut.problem('🐙🦑'.repeat(5), account)).toBeNull();
    // Full-width letters fold to ASCII under NFKC, so this is the common "password123".
    expect(sut.problem('ｐａｓｓｗｏｒｄ１２３', account)).toBe(
      'is too common; choose a less guessable password',
    );
  });

  it('should refuse more than 128 characters', () => {
    expect(sut.problem('xy'.repeat(64), account)).toBeNull();
    expect(sut.problem(`${'xy'.repeat(64)}z`, account)).toBe('must be at most 128 characters');
  });

  it('should find every password of the common list, and nothing that is not on it', () => {
    const list = dictionary['passwords-common'];
    expect(list.length).toBeGreaterThan(40_000);
    expect(list.filter((password) => !isCommonPassword(password.toLowerCase()))).toEqual([]);
    // A control character is never on the list (and is refused earlier anyway): each lookup must miss.
    expect(list.filter((password) => isCommonPassword(`${password.toLowerCase()}\u0000`))).toEqual([]);
    expect(list.filter((password) => isCommonPassword(`\u0000${password.toLowerCase()}`))).toEqual([]);
    expect(isCommonPassword('')).toBe(false);
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

  it('should refuse control characters and unpaired surrogates wherever they are', () => {
    expect(sut.problem('\u0000'.repeat(10), account)).toBe('must not contain control characters');
    expect(sut.problem('violet kettle\u001b drifts', account)).toBe('must not contain control characters');
    // Each would reach the hash as U+FFFD, so these two would be one password.
    for (const half of ['\ud800', '\udfff']) {
      expect(sut.problem(`violet kettle ${half} drifts`, account)).toBe(
        'must not contain unpaired surrogate code units',
      );
    }
    expect(sut.problem('violet kettle 🐙 drifts', account)).toBeNull();
  });

  it('should refuse a password that prints as nothing', () => {
    for (const invisible of [' ', '\u200b', '\u00a0', '\u2060', '\ufeff', '\u3000']) {
      expect(sut.problem(invisible.repeat(12), account)).toBe('must contain visible characters');
    }
  });

  it('should refuse alphabet, digit and keyboard sequences and a single repeated character', () => {
    const sequence = 'is a sequence or repetition; choose a less guessable password';
    for (const password of [
      'abcdefghijkl',
      'lkjihgfedcba',
      'qwertyuiopasdf',
      '1234567890',
      'azertyuiopqsdf',
      'zzzzzzzzzzzz',
    ]) {
      // Some of these are on the common list too; either way they are refused.
      expect([sequence, 'is too common; choose a less guessable password']).toContain(
        sut.problem(password, account),
      );
    }
    expect(sut.problem('abcdefghijkl', account)).toBe(sequence);
    expect(sut.problem('🔐🦄'.repeat(6), account)).toBeNull();
  });

  it('should refuse the service’s name and the account’s names padded with digits or symbols', () => {
    const close = 'is too close to the service’s or your account’s name';
    for (const password of [
      'gatehouse2026',
      'Gatehouse!2026',
      '2026 countess!!',
      'lovelace123456',
      'example#2026',
    ]) {
      expect(sut.problem(password, account)).toBe(close);
    }
    expect(sut.problem('gatehouse violet kettle', account)).toBeNull();
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
