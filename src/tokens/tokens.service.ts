import { createHash, randomBytes } from 'node:crypto';
import { HttpStatus, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { OneTimeTokensRepository } from './one-time-tokens.repository.js';
import {
  MFA_TOKEN_MAX_ATTEMPTS,
  TOKEN_PURPOSE_NAMES,
  TOKEN_PURPOSES,
  type TokenPurpose,
} from './token-purposes.js';

export type { TokenPurpose } from './token-purposes.js';

/** Why an mfaToken cannot be used (for the audit row; the client hears only MFA_INVALID). */
export type MfaTokenRefusal = 'unknown' | 'used' | 'expired' | 'exhausted';

/** 32 bytes = 256 bits, the floor DESIGN §5 sets; base64url without padding is 43 characters. */
const TOKEN_BYTES = 32;
/** What a raw token can look like; anything else is refused before it reaches the database. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43,128}$/;

export function hashToken(rawToken: string): string {
  return createHash('sha256').update(rawToken, 'utf8').digest('hex');
}

/**
 * Single-use email-verification and password-reset tokens. Only the SHA-256 of a token is stored,
 * so a database leak yields no usable link; consumption is one conditional UPDATE, so of N
 * concurrent uses exactly one wins (DESIGN §5).
 */
@Injectable()
export class TokensService implements OnModuleInit {
  private readonly logger = new Logger(TokensService.name);

  constructor(
    private readonly tokens: OneTimeTokensRepository,
    private readonly config: ConfigService<Config, true>,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  /**
   * Returns the raw token, to be mailed; it is never stored. A verification link may carry the
   * password hash of the registration that asked for it (DESIGN §5), set when the link is used.
   */
  async issue(purpose: TokenPurpose, userId: number, passwordHash: string | null = null): Promise<string> {
    const now = this.clock.now();
    if (TOKEN_PURPOSES[purpose].supersedes) {
      // Only the newest link works: an older mail lying in an inbox is dead.
      await this.invalidateAll(userId, purpose);
    }
    const rawToken = randomBytes(TOKEN_BYTES).toString('base64url');
    await this.tokens.insert(
      purpose,
      {
        userId,
        tokenHash: hashToken(rawToken),
        expirationDate: new Date(now.getTime() + this.ttlMs(purpose)),
        createdAt: now,
      },
      passwordHash,
    );
    return rawToken;
  }

  /**
   * Burns the token and returns its user's id. Unknown, used, other-purpose or malformed tokens are
   * TOKEN_INVALID; a token past its expiration_date (compared with the injected clock) is TOKEN_EXPIRED.
   */
  async consume(purpose: TokenPurpose, rawToken: string): Promise<number> {
    if (typeof rawToken !== 'string' || !TOKEN_SHAPE.test(rawToken)) {
      throw invalid();
    }
    const tokenHash = hashToken(rawToken);
    const now = this.clock.now();
    const burnt = await this.tokens.markUsed(purpose, tokenHash, now);
    const row = await this.tokens.findByHash(purpose, tokenHash);
    if (burnt && row) {
      return row.userId;
    }
    if (row && row.usedAt === null && row.expirationDate.getTime() <= now.getTime()) {
      throw new AppException(
        HttpStatus.BAD_REQUEST,
        'TOKEN_EXPIRED',
        'This link has expired; ask for a new one.',
      );
    }
    throw invalid();
  }

  /**
   * Burns a verification token; returns its user and the password hash it carries (null for a
   * resend link). Fails like `consume`.
   */
  async consumeVerification(rawToken: string): Promise<{ userId: number; passwordHash: string | null }> {
    const userId = await this.consume('email_verification', rawToken);
    return { userId, passwordHash: await this.tokens.carriedPasswordHash(hashToken(rawToken)) };
  }

  /**
   * The user a still-usable token belongs to, without burning it: lets a caller reject a bad link
   * before doing expensive work (hashing a new password). `consume` remains the only way to use one.
   */
  async peek(purpose: TokenPurpose, rawToken: string): Promise<number | null> {
    if (typeof rawToken !== 'string' || !TOKEN_SHAPE.test(rawToken)) {
      return null;
    }
    const row = await this.tokens.findByHash(purpose, hashToken(rawToken));
    return row && row.usedAt === null && row.expirationDate > this.clock.now() ? row.userId : null;
  }

  /**
   * Spends one attempt of an mfaToken (DESIGN §10: at most 5 codes per token). Returns the token's
   * user when the attempt may go ahead, or why it may not: an unknown token has no user.
   */
  async spendMfaAttempt(
    rawToken: string,
  ): Promise<{ ok: true; userId: number } | { ok: false; userId: number | null; reason: MfaTokenRefusal }> {
    if (typeof rawToken !== 'string' || !TOKEN_SHAPE.test(rawToken)) {
      return { ok: false, userId: null, reason: 'unknown' };
    }
    const tokenHash = hashToken(rawToken);
    const now = this.clock.now();
    const spent = await this.tokens.spendMfaAttempt(tokenHash, now, MFA_TOKEN_MAX_ATTEMPTS);
    const row = await this.tokens.findByHash('mfa_login', tokenHash);
    if (!row) {
      return { ok: false, userId: null, reason: 'unknown' };
    }
    if (spent) {
      return { ok: true, userId: row.userId };
    }
    const reason: MfaTokenRefusal =
      row.usedAt !== null ? 'used' : row.expirationDate <= now ? 'expired' : 'exhausted';
    return { ok: false, userId: row.userId, reason };
  }

  /** Burns a token in the one conditional UPDATE; true only for the caller that burnt it. */
  burn(purpose: TokenPurpose, rawToken: string): Promise<boolean> {
    return this.tokens.markUsed(purpose, hashToken(rawToken), this.clock.now());
  }

  /** Kills every outstanding token of a purpose, e.g. reset links after a password change. */
  invalidateAll(userId: number, purpose: TokenPurpose): Promise<void> {
    return this.tokens.deleteUnused(purpose, userId);
  }

  /** Deletes used and expired rows of every purpose; returns how many went. */
  async purgeExpired(): Promise<number> {
    const now = this.clock.now();
    let purged = 0;
    for (const purpose of TOKEN_PURPOSE_NAMES) {
      purged += await this.tokens.deleteFinished(purpose, now);
    }
    return purged;
  }

  onModuleInit(): void {
    scheduleCleanup(
      this.scheduler,
      {
        name: 'tokens-purge',
        everyMs: this.config.getOrThrow('tokens', { infer: true }).purgeIntervalMs,
        what: 'used or expired one-time tokens',
        run: () => this.purgeExpired(),
      },
      this.logger,
    );
  }

  private ttlMs(purpose: TokenPurpose): number {
    return TOKEN_PURPOSES[purpose].ttlMs(this.config.getOrThrow('tokens', { infer: true }));
  }
}

function invalid(): AppException {
  return new AppException(
    HttpStatus.BAD_REQUEST,
    'TOKEN_INVALID',
    'This link is not valid; ask for a new one.',
  );
}
