import { ConfigError, ENV_SPEC, parseEnv } from './env.js';

const SECRET = 'k'.repeat(40);
const PAYLOAD_KEY = Buffer.alloc(32, 1).toString('base64');

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
    const attempt = () =>
      parseEnv({
        PORT: 'eighty',
        BCRYPT_COST: '99',
        JWT_ACCESS_TTL: 'soon',
        DATABASE_URL: 'postgres://x',
        TRUST_PROXY: 'maybe',
      });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const problems = (error as ConfigError).problems.join('\n');
      for (const name of ['PORT', 'BCRYPT_COST', 'JWT_ACCESS_TTL', 'DATABASE_URL', 'TRUST_PROXY']) {
        expect(problems).toContain(name);
      }
      expect((error as ConfigError).problems).toHaveLength(5);
    }
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

  it('should refuse a short JWT secret in any environment', () => {
    expect(() => parseEnv({ JWT_SECRET: 'short' })).toThrow(/at least 32 bytes/);
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

  it('should describe every variable it reads', () => {
    for (const [name, spec] of Object.entries(ENV_SPEC)) {
      expect(`${name}: ${spec.description}`.length).toBeGreaterThan(name.length + 10);
    }
  });
});
