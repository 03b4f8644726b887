import { ConfigError, ENV_SPEC, parseEnv } from './env.js';

const SECRET = 'k'.repeat(40);
const PAYLOAD_KEY = Buffer.alloc(32, 1).toString('base64');

/** The problems parseEnv reports for `raw`; fails the test when it accepts it. */
function problemsOf(raw: Record<string, string>): string[] {
  try {
    parseEnv(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`parseEnv accepted ${JSON.stringify(raw)}`);
}

describe(parseEnv.name, () => {
  it('should apply the documented defaults to an empty environment', () => {
    const env = parseEnv({});
    expect(env).toMatchObject({
      NODE_ENV: 'development',
      PORT: 3000,
      DATABASE_URL: 'sqlite:var/gatehouse.sqlite',
      JWT_ACCESS_TTL: 15 * 60_000,
      REFRESH_TTL: 30 * 24 * 3_600_000,
      VERIFY_TOKEN_TTL: 24 * 3_600_000,
      RESET_TOKEN_TTL: 3_600_000,
      BCRYPT_COST: 12,
      AUTH_REQUIRE_VERIFIED_EMAIL: true,
      TRUST_PROXY: false,
      CORS_ORIGINS: [],
      BODY_LIMIT: 100 * 1024,
      APP_PUBLIC_URL: 'http://localhost:3000',
    });
  });

  it('should name every bad variable in one error', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      BCRYPT_COST: '99',
      JWT_ACCESS_TTL: 'soon',
      DATABASE_URL: 'postgres://x',
      TRUST_PROXY: 'maybe',
    });
    expect(problems.map((p) => p.split(' ')[0]).sort()).toEqual([
      'BCRYPT_COST',
      'DATABASE_URL',
      'JWT_ACCESS_TTL',
      'PORT',
      'TRUST_PROXY',
    ]);
  });

  it('should report a bad MAIL_URL beside a bad PORT, not only the first', () => {
    expect(problemsOf({ PORT: 'abc', MAIL_URL: 'http://x' })).toEqual([
      'PORT must be a whole number between 0 and 65535',
      'MAIL_URL must be a URL starting with smtp:// or smtps://',
    ]);
  });

  it('should list production refusals together with malformed variables', () => {
    expect(problemsOf({ NODE_ENV: 'production', PORT: 'abc', REDIS_URL: 'http://r' })).toEqual([
      'PORT must be a whole number between 0 and 65535',
      'REDIS_URL must be a URL starting with redis:// or rediss://',
      'APP_PUBLIC_URL is required in production (links in mail are built from it)',
      'JWT_SECRET is required in production',
      'MAIL_URL is required in production (smtp:// or smtps://)',
      'MAIL_PAYLOAD_KEY is required in production (openssl rand -base64 32)',
    ]);
  });

  it('should treat an empty or blank value as unset and trim the others', () => {
    const env = parseEnv({ PORT: '', JWT_SECRET: '   ', LOG_LEVEL: ' warn ' });
    expect(env.PORT).toBe(3000);
    expect(env.JWT_SECRET).toBeUndefined();
    expect(env.LOG_LEVEL).toBe('warn');
  });

  it('should refuse to boot production without a real secret, mail and public URL', () => {
    expect(() => parseEnv({ NODE_ENV: 'production' })).toThrow(
      /JWT_SECRET is required[\s\S]*MAIL_URL[\s\S]*|APP_PUBLIC_URL/,
    );
    expect(() =>
      parseEnv({
        NODE_ENV: 'production',
        JWT_SECRET: 'change-me-change-me-change-me-change-me',
        MAIL_URL: 'smtp://m',
        APP_PUBLIC_URL: 'https://a.example',
      }),
    ).toThrow(/placeholder/);
    expect(() =>
      parseEnv({
        NODE_ENV: 'production',
        JWT_SECRET: SECRET,
        MAIL_URL: 'smtp://m',
        MAIL_PAYLOAD_KEY: PAYLOAD_KEY,
        APP_PUBLIC_URL: 'https://a.example',
        BCRYPT_COST: '9',
      }),
    ).toThrow(/BCRYPT_COST must be at least 10/);
    expect(
      parseEnv({
        NODE_ENV: 'production',
        JWT_SECRET: SECRET,
        MAIL_URL: 'smtp://mail:25',
        MAIL_PAYLOAD_KEY: PAYLOAD_KEY,
        APP_PUBLIC_URL: 'https://a.example',
      }).NODE_ENV,
    ).toBe('production');
  });

  it('should read MAIL_PAYLOAD_KEY as a comma list, newest first, and name a malformed entry without echoing it', () => {
    const hex = Buffer.alloc(32, 2).toString('hex');
    expect(parseEnv({ MAIL_PAYLOAD_KEY: ` ${PAYLOAD_KEY} , ${hex} ` }).MAIL_PAYLOAD_KEY).toEqual([
      Buffer.alloc(32, 1),
      Buffer.alloc(32, 2),
    ]);
    expect(problemsOf({ MAIL_PAYLOAD_KEY: `${PAYLOAD_KEY},tooShortToBeAKey` })).toEqual([
      'MAIL_PAYLOAD_KEY must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32) (entry 2 of 2 in the comma list)',
    ]);
    expect(problemsOf({ MAIL_PAYLOAD_KEY: `x,${PAYLOAD_KEY},` })).toEqual([
      'MAIL_PAYLOAD_KEY must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32) (entries 1, 3 of 3 in the comma list)',
    ]);
    expect(problemsOf({ MAIL_PAYLOAD_KEY: 'nope' })).toEqual([
      'MAIL_PAYLOAD_KEY must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32)',
    ]);
  });

  it('should refuse a short JWT secret in any environment', () => {
    expect(() => parseEnv({ JWT_SECRET: 'short' })).toThrow(/at least 32 bytes/);
  });

  it('should refuse an issuer or audience that would make tokens longer than a client may send', () => {
    expect(problemsOf({ JWT_ISSUER: 'i'.repeat(256), JWT_AUDIENCE: 'a'.repeat(256) })).toHaveLength(2);
    expect(parseEnv({ JWT_ISSUER: 'i'.repeat(255), JWT_AUDIENCE: 'a'.repeat(255) }).JWT_ISSUER).toHaveLength(
      255,
    );
  });

  it('should parse trust-proxy lists, origins, sizes and booleans', () => {
    const env = parseEnv({
      TRUST_PROXY: '10.0.0.1, 192.168.0.0/16',
      CORS_ORIGINS: 'https://a.example, http://localhost:5173/',
      BODY_LIMIT: '1mb',
      AUTH_REQUIRE_VERIFIED_EMAIL: 'false',
      DATABASE_URL: 'mysql://root@127.0.0.1:3306/gatehouse',
    });
    expect(env.TRUST_PROXY).toEqual(['10.0.0.1', '192.168.0.0/16']);
    expect(env.CORS_ORIGINS).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(env.BODY_LIMIT).toBe(1024 * 1024);
    expect(env.AUTH_REQUIRE_VERIFIED_EMAIL).toBe(false);
  });

  it('should keep the body budget at least one largest body per client, and the total at least one client', () => {
    expect(parseEnv({})).toMatchObject({
      BODY_LIMIT: 100 * 1024,
      BODY_BUDGET_PER_CLIENT: 1024 * 1024,
      BODY_BUDGET: 32 * 1024 * 1024,
      REQUEST_TIMEOUT: 30_000,
    });
    expect(problemsOf({ BODY_LIMIT: '2mb', BODY_BUDGET_PER_CLIENT: '1mb' })).toEqual([
      expect.stringMatching(/^BODY_BUDGET_PER_CLIENT .*at least BODY_LIMIT/),
    ]);
    expect(problemsOf({ BODY_BUDGET_PER_CLIENT: '64mb', BODY_BUDGET: '32mb' })).toEqual([
      expect.stringMatching(/^BODY_BUDGET .*at least BODY_BUDGET_PER_CLIENT/),
    ]);
    expect(parseEnv({ BODY_LIMIT: '1mb', BODY_BUDGET_PER_CLIENT: '1mb', BODY_BUDGET: '1mb' })).toMatchObject({
      BODY_BUDGET: 1024 * 1024,
    });
    for (const timeout of ['0', '999ms', '2h']) {
      expect(problemsOf({ REQUEST_TIMEOUT: timeout })).toEqual([expect.stringMatching(/^REQUEST_TIMEOUT /)]);
    }
    expect(parseEnv({ REQUEST_TIMEOUT: '1s' }).REQUEST_TIMEOUT).toBe(1000);
  });

  it('should describe every variable it reads, with its default as written in the environment', () => {
    for (const [name, spec] of Object.entries(ENV_SPEC)) {
      expect(`${name}: ${spec.description}`.length).toBeGreaterThan(name.length + 10);
    }
    expect(ENV_SPEC.JWT_ACCESS_TTL.default).toBe('15m');
    expect(ENV_SPEC.BODY_LIMIT.default).toBe('100kb');
    expect(ENV_SPEC.CORS_ORIGINS.default).toBe('');
    expect(ENV_SPEC.JWT_SECRET).not.toHaveProperty('default');
  });
});
