import type { ConfigService } from '@nestjs/config';
import type { SchedulerRegistry } from '@nestjs/schedule';
import type { Config } from '../config/config.js';
import type { OneTimeTokensRepository, TokenState } from './one-time-tokens.repository.js';
import { TOKEN_PURPOSES, type TokenPurpose } from './token-purposes.js';
import { hashToken, TokensService } from './tokens.service.js';

const HOUR = 3600_000;

interface Row extends TokenState {
  purpose: TokenPurpose;
  tokenHash: string;
}

/** The repository seam, in memory: the same answers the SQL gives, per purpose. */
class FakeTokens implements Pick<OneTimeTokensRepository, keyof OneTimeTokensRepository> {
  rows: Row[] = [];

  insert(purpose: TokenPurpose, row: { userId: number; tokenHash: string; expirationDate: Date }) {
    this.rows.push({ purpose, usedAt: null, ...row });
    return Promise.resolve();
  }

  markUsed(purpose: TokenPurpose, tokenHash: string, now: Date) {
    const row = this.find(purpose, tokenHash);
    if (!row || row.usedAt !== null || row.expirationDate <= now) {
      return Promise.resolve(false);
    }
    row.usedAt = now;
    return Promise.resolve(true);
  }

  spendMfaAttempt() {
    return Promise.resolve(false);
  }

  carriedPasswordHash() {
    return Promise.resolve(null);
  }

  findByHash(purpose: TokenPurpose, tokenHash: string) {
    return Promise.resolve(this.find(purpose, tokenHash) ?? null);
  }

  deleteUnused(purpose: TokenPurpose, userId: number) {
    this.rows = this.rows.filter((r) => !(r.purpose === purpose && r.userId === userId && r.usedAt === null));
    return Promise.resolve();
  }

  deleteFinished(purpose: TokenPurpose, now: Date) {
    const before = this.rows.length;
    this.rows = this.rows.filter(
      (r) => r.purpose !== purpose || (r.usedAt === null && r.expirationDate > now),
    );
    return Promise.resolve(before - this.rows.length);
  }

  private find(purpose: TokenPurpose, tokenHash: string) {
    return this.rows.find((r) => r.purpose === purpose && r.tokenHash === tokenHash);
  }
}

describe(TokensService.name, () => {
  let sut: TokensService;
  let tokens: FakeTokens;
  let now: Date;

  beforeEach(() => {
    tokens = new FakeTokens();
    now = new Date('2030-01-01T00:00:00.000Z');
    const clock = { now: () => now };
    const config = {
      getOrThrow: () => ({ verifyTtlMs: 24 * HOUR, resetTtlMs: HOUR }),
    } as unknown as ConfigService<Config, true>;
    sut = new TokensService(
      tokens as unknown as OneTimeTokensRepository,
      config,
      clock,
      {} as SchedulerRegistry,
    );
  });

  it('should store only the SHA-256 of a 256-bit token, with the purpose’s expiry', async () => {
    const raw = await sut.issue('password_reset', 7);
    expect(Buffer.from(raw, 'base64url')).toHaveLength(32);
    expect(tokens.rows).toEqual([
      {
        purpose: 'password_reset',
        userId: 7,
        tokenHash: hashToken(raw),
        usedAt: null,
        expirationDate: new Date(now.getTime() + HOUR),
        createdAt: now,
      },
    ]);
    await sut.issue('email_verification', 7);
    expect(tokens.rows[1].expirationDate).toEqual(new Date(now.getTime() + 24 * HOUR));
  });

  it('should let only the newest token of a superseding purpose work', async () => {
    expect(TOKEN_PURPOSES.password_reset.supersedes).toBe(true);
    expect(TOKEN_PURPOSES.email_verification.supersedes).toBe(false);
    const [firstReset, secondReset] = [
      await sut.issue('password_reset', 7),
      await sut.issue('password_reset', 7),
    ];
    const [firstVerify, secondVerify] = [
      await sut.issue('email_verification', 7),
      await sut.issue('email_verification', 7),
    ];
    await expect(sut.consume('password_reset', firstReset)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await expect(sut.consume('password_reset', secondReset)).resolves.toBe(7);
    await expect(sut.consume('email_verification', firstVerify)).resolves.toBe(7);
    await expect(sut.consume('email_verification', secondVerify)).resolves.toBe(7);
  });

  it('should consume once, never across purposes, and tell expired from invalid', async () => {
    const raw = await sut.issue('email_verification', 3);
    await expect(sut.consume('password_reset', raw)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await expect(sut.consume('email_verification', raw)).resolves.toBe(3);
    await expect(sut.consume('email_verification', raw)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });

    const late = await sut.issue('email_verification', 3);
    now = new Date(now.getTime() + 24 * HOUR);
    await expect(sut.consume('email_verification', late)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('should refuse a malformed token without asking the repository', async () => {
    const findByHash = jest.spyOn(tokens, 'findByHash');
    await expect(sut.consume('password_reset', 'short')).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await expect(sut.peek('password_reset', "x' OR 1=1 --".padEnd(50, 'x'))).resolves.toBeNull();
    expect(findByHash).not.toHaveBeenCalled();
  });

  it('should peek without burning, and purge used and expired rows of every purpose', async () => {
    const used = await sut.issue('email_verification', 1);
    const live = await sut.issue('password_reset', 2);
    await sut.issue('email_verification', 3);
    await expect(sut.peek('password_reset', live)).resolves.toBe(2);
    await expect(sut.consume('email_verification', used)).resolves.toBe(1);
    now = new Date(now.getTime() + 2 * HOUR); // the reset token (1 h) is now expired, the verification (24 h) not
    await expect(sut.purgeExpired()).resolves.toBe(2);
    expect(tokens.rows.map((r) => r.userId)).toEqual([3]);
  });
});
