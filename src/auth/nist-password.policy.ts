import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { dictionary } from '@zxcvbn-ts/language-common';
import type { Config } from '../config/config.js';
import {
  normalizePassword,
  PASSWORD_MAX_LENGTH,
  type PasswordContext,
  PasswordPolicy,
} from './password.policy.js';

/** ~49,000 of the most common passwords, from zxcvbn-ts's maintained list. */
const COMMON_PASSWORDS = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));

/**
 * The default policy (NIST SP 800-63B §5.1.1.2): length in code points, no composition rules, not a
 * common password, not the account's own email or username.
 */
@Injectable()
export class NistPasswordPolicy extends PasswordPolicy {
  private readonly minLength: number;

  constructor(config: ConfigService<Config, true>) {
    super();
    this.minLength = config.getOrThrow('auth', { infer: true }).passwordMinLength;
  }

  problem(password: string, context: PasswordContext): string | null {
    const normalized = normalizePassword(password);
    const length = [...normalized].length;
    if (length < this.minLength) {
      return `must be at least ${this.minLength} characters`;
    }
    if (length > PASSWORD_MAX_LENGTH) {
      return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
    }
    const lower = normalized.toLowerCase();
    if (COMMON_PASSWORDS.has(lower)) {
      return 'is too common; choose a less guessable password';
    }
    const email = context.email?.toLowerCase();
    if (email && (lower === email || lower === email.split('@')[0])) {
      return 'must not be your email address';
    }
    if (context.username && lower === context.username.toLowerCase()) {
      return 'must not be your username';
    }
    return null;
  }
}
