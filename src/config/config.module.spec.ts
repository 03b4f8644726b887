import { ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import type { Config } from './config.js';
import { validateConfig } from './config.module.js';
import { ConfigError } from './env.js';

const SECRET = 's'.repeat(40);

describe(validateConfig.name, () => {
  it('should serve what the validate hook returned through ConfigService', async () => {
    const config = await validateConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, JWT_ISSUER: 'issuer-x' });
    const moduleRef = await Test.createTestingModule({ imports: [config.module] }).compile();
    const sut = moduleRef.get<ConfigService<Config, true>>(ConfigService);

    expect(sut.getOrThrow('auth', { infer: true })).toEqual(config.values.auth);
    expect(sut.getOrThrow('auth', { infer: true }).jwtIssuer).toBe('issuer-x');
    await moduleRef.close();
  });

  it('should reject the record with one ConfigError naming every bad variable', async () => {
    await expect(validateConfig({ PORT: 'abc', MAIL_URL: 'http://x' })).rejects.toThrow(ConfigError);
    await expect(validateConfig({ PORT: 'abc', MAIL_URL: 'http://x' })).rejects.toMatchObject({
      problems: [expect.stringMatching(/^PORT /), expect.stringMatching(/^MAIL_URL /)],
    });
  });

  it('should validate only the record it is given, and write nothing back to process.env', async () => {
    process.env.JWT_ISSUER = 'from-process-env';
    try {
      const config = await validateConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET });
      expect(config.values.auth.jwtIssuer).toBe('gatehouse');
      expect(process.env.JWT_SECRET).toBeUndefined();
    } finally {
      delete process.env.JWT_ISSUER;
    }
  });

  it('should gather process.env itself when given no record, as `npm start` does', async () => {
    const nodeEnv = process.env.NODE_ENV;
    // 'test' keeps generated secrets in memory instead of under var/.
    Object.assign(process.env, { NODE_ENV: 'test', JWT_ISSUER: 'from-process-env' });
    try {
      const config = await validateConfig();
      expect(config.values.auth.jwtIssuer).toBe('from-process-env');
    } finally {
      delete process.env.JWT_ISSUER;
      if (nodeEnv === undefined) {
        delete process.env.NODE_ENV;
      } else {
        process.env.NODE_ENV = nodeEnv;
      }
    }
  });
});
