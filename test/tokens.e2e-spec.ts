import { Clock } from '../src/common/clock.js';
import { MailService } from '../src/mail/mail.service.js';
import { EmailVerificationToken, PasswordResetToken } from '../src/tokens/one-time-token.entity.js';
import { hashToken, TokensService } from '../src/tokens/tokens.service.js';
import { newUser } from './support/factories.js';
import { UnitOfWork } from '../src/database/unit-of-work.js';
import { TestApp } from './support/test-app.js';

describe(TokensService.name, () => {
  let t: TestApp;
  let sut: TokensService;

  beforeAll(async () => {
    t = await TestApp.start({ MAIL_POLL_INTERVAL: '1h' });
    sut = t.app.get(TokensService);
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await t.close();
  });

  const expectCode = async (promise: Promise<unknown>, code: string) => {
    await expect(promise).rejects.toMatchObject({ code, status: 400 });
  };

  it('should issue 10,000 distinct 256-bit base64url tokens', async () => {
    const user = await newUser(t);
    const tokens = await t.app.get(UnitOfWork).withTransaction(async () => {
      const issued: string[] = [];
      for (let i = 0; i < 10_000; i += 1) {
        issued.push(await sut.issue('email_verification', user.id));
      }
      return issued;
    });
    expect(new Set(tokens).size).toBe(10_000);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    }
    // 43 base64url characters carry 258 bits; the decoded token is 32 bytes.
    expect(Buffer.from(tokens[0], 'base64url')).toHaveLength(32);
    await t.dataSource.getRepository(EmailVerificationToken).delete({ userId: user.id });
  }, 120_000);

  it('should store only the SHA-256 of a token: no raw token in any table, outbox included', async () => {
    const user = await newUser(t);
    const verify = await sut.issue('email_verification', user.id);
    const reset = await sut.issue('password_reset', user.id);
    await t.app.get(MailService).enqueue('verify-email', user.email, { token: verify });
    await t.app.get(MailService).enqueue('reset-password', user.email, { token: reset });

    const stored = await t.dataSource
      .getRepository(EmailVerificationToken)
      .findOneByOrFail({ userId: user.id });
    expect(stored.tokenHash).toBe(hashToken(verify));
    expect(stored.tokenHash).toMatch(/^[0-9a-f]{64}$/);

    const dump = await dumpDatabase(t);
    for (const raw of [verify, reset]) {
      expect(dump).not.toContain(raw);
      expect(dump).not.toContain(Buffer.from(raw, 'base64url').toString('hex'));
      expect(dump).not.toContain(encodeURIComponent(raw));
    }
    expect(t.logs.join('')).not.toContain(verify);
  });

  it('should work until the expiration date and not one millisecond after', async () => {
    const clock = t.app.get(Clock);
    const user = await newUser(t);
    const issuedAt = new Date('2030-01-01T00:00:00.000Z');
    const spy = jest.spyOn(clock, 'now').mockReturnValue(issuedAt);
    try {
      const early = await sut.issue('email_verification', user.id);
      const exact = await sut.issue('email_verification', user.id);
      const late = await sut.issue('email_verification', user.id);
      const expiration = issuedAt.getTime() + t.config.tokens.verifyTtlMs;

      spy.mockReturnValue(new Date(expiration - 1));
      await expect(sut.consume('email_verification', early)).resolves.toBe(user.id);

      spy.mockReturnValue(new Date(expiration));
      await expectCode(sut.consume('email_verification', exact), 'TOKEN_EXPIRED');

      spy.mockReturnValue(new Date(expiration + 1));
      await expectCode(sut.consume('email_verification', late), 'TOKEN_EXPIRED');
    } finally {
      spy.mockRestore();
    }
  });

  it('should use the configured lifetimes: 24 h to verify, 1 h to reset', async () => {
    const user = await newUser(t);
    const before = Date.now();
    await sut.issue('password_reset', user.id);
    const row = await t.dataSource.getRepository(PasswordResetToken).findOneByOrFail({ userId: user.id });
    expect(row.expirationDate.getTime() - before).toBeGreaterThanOrEqual(3_600_000 - 1_000);
    expect(row.expirationDate.getTime() - before).toBeLessThanOrEqual(3_600_000 + 1_000);
    expect(t.config.tokens.verifyTtlMs).toBe(24 * 3_600_000);
  });

  it('should refuse a second use with TOKEN_INVALID', async () => {
    const user = await newUser(t);
    const token = await sut.issue('email_verification', user.id);
    await expect(sut.consume('email_verification', token)).resolves.toBe(user.id);
    await expectCode(sut.consume('email_verification', token), 'TOKEN_INVALID');
  });

  it('should never consume a token as the other purpose', async () => {
    const user = await newUser(t);
    const verify = await sut.issue('email_verification', user.id);
    const reset = await sut.issue('password_reset', user.id);
    await expectCode(sut.consume('password_reset', verify), 'TOKEN_INVALID');
    await expectCode(sut.consume('email_verification', reset), 'TOKEN_INVALID');
    // The failed cross-purpose attempts burned nothing.
    await expect(sut.consume('email_verification', verify)).resolves.toBe(user.id);
    await expect(sut.consume('password_reset', reset)).resolves.toBe(user.id);
  });

  it.each([
    ['empty', ''],
    ['short', 'abc'],
    ['too long', 'a'.repeat(5000)],
    ['SQL', "' OR '1'='1"],
    ['unicode', 'é'.repeat(43)],
    ['well-formed but unknown', 'A'.repeat(43)],
    ['not a string', 12345 as unknown as string],
  ])('should answer TOKEN_INVALID for a %s token', async (_label, token) => {
    await expectCode(sut.consume('password_reset', token), 'TOKEN_INVALID');
  });

  it('should let exactly one of 20 concurrent consumes win', async () => {
    const user = await newUser(t);
    const token = await sut.issue('password_reset', user.id);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        // Each in a unit of work of its own, as a request would (queued on SQLite's one connection).
        t.app.get(UnitOfWork).withTransaction(() => sut.consume('password_reset', token)),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const failure of lost) {
      expect(failure.reason).toMatchObject({ code: 'TOKEN_INVALID' });
    }
  });

  it('should keep a token usable when the consuming transaction rolls back', async () => {
    const user = await newUser(t);
    const token = await sut.issue('email_verification', user.id);
    await expect(
      t.app.get(UnitOfWork).withTransaction(async () => {
        await sut.consume('email_verification', token);
        throw new Error('the rest of the request failed');
      }),
    ).rejects.toThrow('the rest of the request failed');
    await expect(sut.consume('email_verification', token)).resolves.toBe(user.id);
  });

  it('should invalidate older reset tokens when a new one is issued, but not verification tokens', async () => {
    const user = await newUser(t);
    const firstReset = await sut.issue('password_reset', user.id);
    const secondReset = await sut.issue('password_reset', user.id);
    const firstVerify = await sut.issue('email_verification', user.id);
    await sut.issue('email_verification', user.id);
    await expectCode(sut.consume('password_reset', firstReset), 'TOKEN_INVALID');
    await expect(sut.consume('password_reset', secondReset)).resolves.toBe(user.id);
    await expect(sut.consume('email_verification', firstVerify)).resolves.toBe(user.id);
  });

  it('should invalidate every outstanding token of a purpose with invalidateAll', async () => {
    const user = await newUser(t);
    const other = await newUser(t);
    const reset = await sut.issue('password_reset', user.id);
    const verify = await sut.issue('email_verification', user.id);
    const othersReset = await sut.issue('password_reset', other.id);
    await sut.invalidateAll(user.id, 'password_reset');
    await expectCode(sut.consume('password_reset', reset), 'TOKEN_INVALID');
    await expect(sut.consume('email_verification', verify)).resolves.toBe(user.id);
    await expect(sut.consume('password_reset', othersReset)).resolves.toBe(other.id);
  });

  it('should purge used and expired tokens and keep live ones', async () => {
    const user = await newUser(t);
    const used = await sut.issue('email_verification', user.id);
    await sut.consume('email_verification', used);
    const live = await sut.issue('email_verification', user.id);
    const clock = t.app.get(Clock);
    const spy = jest
      .spyOn(clock, 'now')
      .mockReturnValue(new Date(Date.now() - 2 * t.config.tokens.resetTtlMs));
    await sut.issue('password_reset', user.id);
    spy.mockRestore();

    await expect(sut.purgeExpired()).resolves.toBeGreaterThanOrEqual(2);
    const verifyRows = await t.dataSource.getRepository(EmailVerificationToken).findBy({ userId: user.id });
    expect(verifyRows.map((r) => r.tokenHash)).toEqual([hashToken(live)]);
    await expect(t.dataSource.getRepository(PasswordResetToken).countBy({ userId: user.id })).resolves.toBe(
      0,
    );
  });
});

/** Every row of every table, as one string to search. */
async function dumpDatabase(t: TestApp): Promise<string> {
  const tables = t.dataSource.entityMetadatas.map((m) => m.tableName);
  tables.push('migrations');
  const parts: string[] = [];
  for (const table of tables) {
    const rows = await t.dataSource.query(`SELECT * FROM ${table}`);
    parts.push(JSON.stringify(rows));
  }
  return parts.join('\n');
}
