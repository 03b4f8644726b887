import { createHash, randomBytes } from 'node:crypto';
import { HttpStatus, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { EmailVerificationToken, PasswordResetToken } from './one-time-token.entity.js';

export type TokenPurpose = 'email_verification' | 'password_reset';

const ENTITY = {
  email_verification: EmailVerificationToken,
  password_reset: PasswordResetToken,
} as const;

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
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly config: ConfigService<Config, true>,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  /** Returns the raw token, to be mailed; it is never stored. */
  async issue(purpose: TokenPurpose, userId: number, manager?: EntityManager): Promise<string> {
    const repository = this.repository(purpose, manager);
    const now = this.clock.now();
    if (purpose === 'password_reset') {
      // Only the newest reset link works: an older mail lying in an inbox is dead.
      await this.invalidateAll(userId, purpose, manager);
    }
    const rawToken = randomBytes(TOKEN_BYTES).toString('base64url');
    await repository.insert({
      userId,
      tokenHash: hashToken(rawToken),
      expirationDate: new Date(now.getTime() + this.ttlMs(purpose)),
      createdAt: now,
      usedAt: null,
    });
    return rawToken;
  }

  /**
   * Burns the token and returns its user's id. Unknown, used, other-purpose or malformed tokens are
   * TOKEN_INVALID; a token past its expiration_date (compared with the injected clock) is TOKEN_EXPIRED.
   */
  async consume(purpose: TokenPurpose, rawToken: string, manager?: EntityManager): Promise<number> {
    if (typeof rawToken !== 'string' || !TOKEN_SHAPE.test(rawToken)) {
      throw invalid();
    }
    const repository = this.repository(purpose, manager);
    const tokenHash = hashToken(rawToken);
    const now = this.clock.now();
    const result = await repository
      .createQueryBuilder()
      .update()
      .set({ usedAt: now })
      .where('token_hash = :tokenHash', { tokenHash })
      .andWhere('used_at IS NULL')
      .andWhere('expiration_date > :now', { now })
      .execute();
    const row = await repository.findOne({
      where: { tokenHash },
      select: { userId: true, usedAt: true, expirationDate: true },
    });
    if (result.affected === 1 && row) {
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
   * The user a still-usable token belongs to, without burning it: lets a caller reject a bad link
   * before doing expensive work (hashing a new password). `consume` remains the only way to use one.
   */
  async peek(purpose: TokenPurpose, rawToken: string): Promise<number | null> {
    if (typeof rawToken !== 'string' || !TOKEN_SHAPE.test(rawToken)) {
      return null;
    }
    const row = await this.repository(purpose).findOne({
      where: { tokenHash: hashToken(rawToken) },
      select: { userId: true, usedAt: true, expirationDate: true },
    });
    return row && row.usedAt === null && row.expirationDate > this.clock.now() ? row.userId : null;
  }

  /** Kills every outstanding token of a purpose, e.g. reset links after a password change. */
  async invalidateAll(userId: number, purpose: TokenPurpose, manager?: EntityManager): Promise<void> {
    await this.repository(purpose, manager)
      .createQueryBuilder()
      .delete()
      .where('user_id = :userId', { userId })
      .andWhere('used_at IS NULL')
      .execute();
  }

  /** Deletes used and expired rows of both purposes; returns how many went. */
  purgeExpired(): Promise<number> {
    return this.deleteUsedAndExpired();
  }

  private async deleteUsedAndExpired(): Promise<number> {
    const now = this.clock.now();
    let purged = 0;
    for (const purpose of Object.keys(ENTITY) as TokenPurpose[]) {
      const result = await this.repository(purpose)
        .createQueryBuilder()
        .delete()
        .where('used_at IS NOT NULL')
        .orWhere('expiration_date <= :now', { now })
        .execute();
      purged += result.affected ?? 0;
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
    const { verifyTtlMs, resetTtlMs } = this.config.getOrThrow('tokens', { infer: true });
    return purpose === 'email_verification' ? verifyTtlMs : resetTtlMs;
  }

  private repository(purpose: TokenPurpose, manager?: EntityManager) {
    return (manager ?? this.dataSource.manager).getRepository<EmailVerificationToken | PasswordResetToken>(
      ENTITY[purpose],
    );
  }
}

function invalid(): AppException {
  return new AppException(
    HttpStatus.BAD_REQUEST,
    'TOKEN_INVALID',
    'This link is not valid; ask for a new one.',
  );
}
