import { createRequire } from 'node:module';

type Otplib = typeof import('otplib');
let loaded: Otplib | undefined;

/**
 * otplib (and its crypto and base32 plugins) is loaded on first use, not at boot: importing it costs
 * ~0.1 s on a busy machine, and the app must be ready in ≤ 1 s (DESIGN §7). Its CommonJS build loads
 * synchronously, so every function here stays synchronous.
 */
function otplib(): Otplib {
  loaded ??= createRequire(import.meta.url)('otplib') as Otplib;
  return loaded;
}

/**
 * RFC 6238 as DESIGN §10 fixes it: HMAC-SHA-1, 6 digits, 30-second steps, a code of the step before
 * or after the current one still accepted (clock drift, typing time). The arithmetic is otplib's.
 */
export const TOTP = { algorithm: 'sha1', digits: 6, period: 30, window: 1 } as const;

/** The step a moment falls in: floor(unix seconds / 30) (RFC 6238 §4, T0 = 0). */
export function timeStepOf(atMs: number): number {
  return Math.floor(atMs / 1000 / TOTP.period);
}

/** A fresh secret: 20 random bytes (160 bits, RFC 4226 §4's recommendation), base32. */
export function newTotpSecret(): string {
  return otplib().generateSecret({ length: 20 });
}

/** The otpauth:// URI an authenticator app scans (Key Uri Format). */
export function otpauthUrl(secret: string, issuer: string, account: string): string {
  return otplib().generateURI({ issuer, label: account, secret, ...TOTP_URI_PARAMS });
}

const TOTP_URI_PARAMS = { algorithm: TOTP.algorithm, digits: TOTP.digits, period: TOTP.period } as const;

/** The code for `secret` (base32) at `atMs`. */
export function totpCode(secret: string, atMs: number): string {
  return otplib().generateSync({ secret, epoch: Math.floor(atMs / 1000), ...TOTP_URI_PARAMS });
}

/**
 * The time step `code` belongs to if it is a valid code for `secret` within ±1 step of `atMs`, else
 * null. Deciding whether that step was used already is the caller's (one conditional UPDATE).
 */
export function matchTotp(secret: string, code: string, atMs: number): number | null {
  if (!/^\d{6}$/.test(code)) {
    return null;
  }
  const result = otplib().verifySync({
    secret,
    token: code,
    epoch: Math.floor(atMs / 1000),
    epochTolerance: TOTP.window * TOTP.period,
    ...TOTP_URI_PARAMS,
  });
  return result.valid ? timeStepOf(atMs) + result.delta : null;
}
