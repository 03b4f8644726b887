import type { Config } from '../config/config.js';
import { EmailVerificationToken, MfaLoginToken, PasswordResetToken } from './one-time-token.entity.js';

type TokensConfig = Config['tokens'];

/** An mfaToken lives 5 minutes (DESIGN §10), and dies after this many wrong codes. */
export const MFA_TOKEN_TTL_MS = 5 * 60 * 1000;
export const MFA_TOKEN_MAX_ATTEMPTS = 5;

export interface TokenPurposeSpec {
  /** The table holding this purpose's hashes: one table per purpose, so a token never crosses over. */
  entity: typeof EmailVerificationToken | typeof PasswordResetToken | typeof MfaLoginToken;
  /** How long a token lives from issue (DESIGN §5: verification 24 h, reset 1 h). */
  ttlMs(config: TokensConfig): number;
  /** Whether issuing a token kills the user's outstanding ones of the same purpose (only the newest works). */
  supersedes: boolean;
}

/**
 * Every one-time token purpose, in one table: a new purpose is one entry (and its entity), and a
 * missing field fails the type check instead of borrowing another purpose's behaviour.
 */
export const TOKEN_PURPOSES = {
  email_verification: { entity: EmailVerificationToken, ttlMs: (c) => c.verifyTtlMs, supersedes: false },
  password_reset: { entity: PasswordResetToken, ttlMs: (c) => c.resetTtlMs, supersedes: true },
  mfa_login: { entity: MfaLoginToken, ttlMs: () => MFA_TOKEN_TTL_MS, supersedes: false },
} as const satisfies Record<string, TokenPurposeSpec>;

export type TokenPurpose = keyof typeof TOKEN_PURPOSES;

export const TOKEN_PURPOSE_NAMES = Object.keys(TOKEN_PURPOSES) as TokenPurpose[];
