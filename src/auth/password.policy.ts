import { HttpStatus } from '@nestjs/common';
import { AppException } from '../common/problem.js';

/** Longest password accepted, in Unicode code points (after NFKC). */
export const PASSWORD_MAX_LENGTH = 128;

/** NFKC, so that visually identical input (full-width digits, ligatures) is one password. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** What a policy may hold a password against: the account it is for. */
export interface PasswordContext {
  email?: string | null;
  username?: string | null;
}

/**
 * The password policy register, reset and change all ask. AuthModule provides NistPasswordPolicy; a
 * team replaces it by providing its own subclass under this token:
 * `{ provide: PasswordPolicy, useClass: MyPolicy }` (extend NistPasswordPolicy to add a rule to it).
 */
export abstract class PasswordPolicy {
  /** Why the password is refused (completing "password …"), or null when it is acceptable. */
  abstract problem(password: string, context: PasswordContext): string | null;

  /** Throws 400 VALIDATION_FAILED naming `field` when the policy refuses the password. */
  assertAcceptable(password: string, context: PasswordContext, field = 'password'): void {
    const problem = this.problem(password, context);
    if (problem) {
      throw new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
        { field, message: `${field} ${problem}` },
      ]);
    }
  }
}
