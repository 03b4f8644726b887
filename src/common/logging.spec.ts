import { Writable } from 'node:stream';
import type { AppConfig } from '../config/config.js';
import { CENSOR, createAppLogger, redactSecrets } from './logging.js';

/** A pino logger built from the app's own options, writing JSON lines into `lines`. */
function appLogger(lines: string[]) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').trim().split('\n'));
      done();
    },
  });
  return createAppLogger({ nodeEnv: 'production', logLevel: 'info' } as AppConfig, sink);
}

describe('log redaction', () => {
  it('hides secrets at the top of a logged object and one or two levels down, arrays included', () => {
    const lines: string[] = [];
    appLogger(lines).info(
      {
        password: 'top secret 1',
        body: { newPassword: 'top secret 2', profile: { refreshToken: 'top secret 3', note: 'kept' } },
        attempts: [{ mfaToken: 'top secret 4' }],
        setup: {
          secret: 'top secret 11',
          otpauthUrl: 'otpauth://totp/x?secret=top secret 12',
          recoveryCodes: ['top secret 13'],
        },
        headers: { authorization: 'Bearer top secret 5', cookie: 'sid=top secret 6' },
      },
      'a developer logged too much',
    );
    const line = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(lines[0]).not.toMatch(/top secret/);
    expect(line).toMatchObject({
      password: CENSOR,
      body: { newPassword: CENSOR, profile: { refreshToken: CENSOR, note: 'kept' } },
      attempts: [{ mfaToken: CENSOR }],
      setup: { secret: CENSOR, otpauthUrl: CENSOR, recoveryCodes: CENSOR },
      headers: { authorization: CENSOR, cookie: CENSOR },
      msg: 'a developer logged too much',
    });
  });

  it("hides a failed query's bound values and statement, on the error and its driverError", () => {
    const lines: string[] = [];
    const error = Object.assign(new Error('Duplicate entry'), {
      parameters: ['$2b$12$hash-that-must-not-leak'],
      sql: "INSERT INTO users VALUES ('$2b$12$hash-that-must-not-leak')",
      driverError: {
        parameters: ['hash-that-must-not-leak'],
        sql: 'hash-that-must-not-leak',
        code: 'ER_DUP_ENTRY',
      },
    });
    appLogger(lines).error({ err: error }, 'query failed');
    expect(lines[0]).not.toMatch(/hash-that-must-not-leak/);
    expect(JSON.parse(lines[0])).toMatchObject({
      err: {
        parameters: CENSOR,
        sql: CENSOR,
        driverError: { parameters: CENSOR, sql: CENSOR, code: 'ER_DUP_ENTRY' },
      },
    });
  });

  it('prints a request as id, method and path only: no headers, no query string', () => {
    const lines: string[] = [];
    appLogger(lines).info(
      {
        req: {
          id: 'r-1',
          method: 'GET',
          url: '/reset-password?token=top-secret-7',
          headers: { authorization: 'Bearer top secret 8', cookie: 'sid=top secret 9' },
        },
        res: { statusCode: 200, headers: { 'set-cookie': 'sid=top secret 10' } },
      },
      'request completed',
    );
    expect(lines[0]).not.toMatch(/top.secret/);
    expect(JSON.parse(lines[0])).toMatchObject({
      req: { id: 'r-1', method: 'GET', url: '/reset-password?[redacted]' },
      res: { statusCode: 200 },
    });
  });

  it("never changes the caller's object, and returns one with nothing to hide as it is", () => {
    const body = { email: 'a@example.test', password: 'secret' };
    const logged = { body };
    const redacted = redactSecrets(logged);
    expect(redacted).toEqual({ body: { email: 'a@example.test', password: CENSOR } });
    expect(body.password).toBe('secret');
    const clean = { res: { statusCode: 200 }, responseTime: 3 };
    expect(redactSecrets(clean)).toBe(clean);
  });
});
