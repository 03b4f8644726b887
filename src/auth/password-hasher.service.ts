import { HttpStatus } from '@nestjs/common';
import { AppException } from '../common/problem.js';

/**
 * Stored where an account has no password anyone may use (an unverified address two registrations
 * claimed). No hash function produces it; `verify` answers false for it at the cost of a comparison.
 */
export const UNUSABLE_PASSWORD_HASH = '!unusable';

/**
 * Hashes and checks passwords. AuthModule provides BcryptPasswordHasher; a team replaces it by
 * providing its own subclass under this token: `{ provide: PasswordHasher, useClass: MyHasher }`.
 * A replacement must keep the two promises login relies on: `verifyNothing` costs what `verify`
 * costs (an unknown email must not answer faster), and `needsRehash` says when a stored hash is
 * weaker than today's settings (it is upgraded on the next successful login).
 */
export abstract class PasswordHasher {
  abstract hash(password: string): Promise<string>;

  /** False, at one comparison's cost, for `UNUSABLE_PASSWORD_HASH`. */
  abstract verify(password: string, hash: string): Promise<boolean>;

  /** Spends one comparison's worth of time and answers false: the unknown-email path of login. */
  abstract verifyNothing(password: string): Promise<false>;

  /** True when the hash was made with weaker settings than today's (re-hash on the next login). */
  abstract needsRehash(hash: string): boolean;
}

/**
 * 503 AUTH_BUSY: a refusal for load — the hashing queue is full, or the checks already in flight on
 * one address did not settle in time. Nothing was checked, so it never counts as a failed sign-in.
 */
export function authBusy(): AppException {
  return new AppException(
    HttpStatus.SERVICE_UNAVAILABLE,
    'AUTH_BUSY',
    'Too many sign-ins at once; try again shortly.',
    undefined,
    { 'Retry-After': '1' },
  );
}
