import { isIP } from 'node:net';
import { parseDuration } from './duration.js';

/**
 * The environment, parsed and validated in one place. Every variable Gatehouse reads is declared in
 * ENV_SPEC; `.env.example`, the README table and the Docker compose test are checked against it.
 */
export type NodeEnv = 'development' | 'production' | 'test';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type TrustProxy = boolean | string[];

export interface Env {
  NODE_ENV: NodeEnv;
  HOST: string;
  PORT: number;
  APP_PUBLIC_URL: string;
  DATABASE_URL: string;
  DB_POOL_SIZE: number;
  DB_MIGRATE_ON_START: boolean;
  JWT_SECRET: string | undefined;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  JWT_ACCESS_TTL: number;
  REFRESH_TTL: number;
  VERIFY_TOKEN_TTL: number;
  RESET_TOKEN_TTL: number;
  TOKEN_PURGE_INTERVAL: number;
  BCRYPT_COST: number;
  PASSWORD_MIN_LENGTH: number;
  AUTH_REQUIRE_VERIFIED_EMAIL: boolean;
  AUTH_LOCKOUT_THRESHOLD: number;
  AUTH_LOCKOUT_DURATION: number;
  HASH_QUEUE_LIMIT: number;
  AUTH_THROTTLE_WINDOW: number;
  AUTH_THROTTLE_IP_LIMIT: number;
  AUTH_THROTTLE_EMAIL_LIMIT: number;
  ACCOUNT_EXISTS_MAIL_WINDOW: number;
  MAIL_URL: string | undefined;
  MAIL_FROM: string;
  MAIL_MAX_ATTEMPTS: number;
  MAIL_POLL_INTERVAL: number;
  MAIL_DIR: string;
  MAIL_PAYLOAD_KEY: Buffer | undefined;
  MAIL_OUTBOX_RETENTION: number;
  MAIL_RETRY_BASE_DELAY: number;
  MAIL_SMTP_TIMEOUT: number;
  REDIS_URL: string | undefined;
  TRUST_PROXY: TrustProxy;
  CORS_ORIGINS: string[];
  BODY_LIMIT: number;
  LOG_LEVEL: LogLevel;
  METRICS_TOKEN: string | undefined;
  AUDIT_RETENTION_DAYS: number;
  AUDIT_PURGE_INTERVAL: number;
}

type Parser<T> = (raw: string) => T | ParseError;

class ParseError {
  constructor(readonly message: string) {}
}

interface VarSpec<K extends keyof Env> {
  description: string;
  default?: string;
  parse: Parser<Env[K]>;
}

const PLACEHOLDER_SECRETS = [/change[-_ ]?me/i, /^secret$/i, /^x+$/i, /placeholder/i, /^example/i];

const int =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) {
      return new ParseError(`must be a whole number between ${min} and ${max}`);
    }
    const n = Number(raw);
    return n >= min && n <= max ? n : new ParseError(`must be between ${min} and ${max}`);
  };

const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) {
    return true;
  }
  if (['false', '0', 'no', 'off'].includes(v)) {
    return false;
  }
  return new ParseError('must be true or false');
};

const duration: Parser<number> = (raw) =>
  parseDuration(raw) ?? new ParseError('must be a duration such as 900s, 15m, 24h or 30d');

const str: Parser<string> = (raw) => raw;
const optional: Parser<string | undefined> = (raw) => (raw.trim() === '' ? undefined : raw.trim());

const url =
  (protocols: string[]): Parser<string> =>
  (raw) => {
    try {
      const u = new URL(raw);
      return protocols.includes(u.protocol)
        ? raw.replace(/\/+$/, '')
        : new ParseError(`must use ${protocols.join(' or ')}`);
    } catch {
      return new ParseError('must be an absolute URL');
    }
  };

const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw) =>
    (values as readonly string[]).includes(raw)
      ? (raw as T)
      : new ParseError(`must be one of ${values.join(', ')}`);

const bytes: Parser<number> = (raw) => {
  const m = /^(\d+)\s*(b|kb|mb)?$/i.exec(raw.trim());
  if (!m) {
    return new ParseError('must be a size such as 102400, 100kb or 1mb');
  }
  const unit = (m[2] ?? 'b').toLowerCase();
  const n = Number(m[1]) * (unit === 'mb' ? 1024 * 1024 : unit === 'kb' ? 1024 : 1);
  return n >= 1024 && n <= 50 * 1024 * 1024 ? n : new ParseError('must be between 1kb and 50mb');
};

const trustProxy: Parser<TrustProxy> = (raw) => {
  const v = raw.trim();
  if (v === '' || v.toLowerCase() === 'false') {
    return false;
  }
  if (v.toLowerCase() === 'true') {
    return true;
  }
  const entries = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = entries.filter((e) => {
    const [addr, prefix] = e.split('/');
    return !isIP(addr) || (prefix !== undefined && !/^\d{1,3}$/.test(prefix));
  });
  return bad.length === 0
    ? entries
    : new ParseError(`must be true, false or a comma list of IPs/CIDRs (bad: ${bad.join(', ')})`);
};

const origins: Parser<string[]> = (raw) => {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((o) => {
    try {
      const u = new URL(o);
      return u.origin !== o.replace(/\/$/, '');
    } catch {
      return true;
    }
  });
  return bad.length === 0
    ? list.map((o) => o.replace(/\/$/, ''))
    : new ParseError(`must be a comma list of origins (bad: ${bad.join(', ')})`);
};

/** 32 bytes, given as 64 hex digits or as (url-safe) base64. */
const aesKey: Parser<Buffer | undefined> = (raw) => {
  const v = raw.trim();
  if (v === '') {
    return undefined;
  }
  const key = /^[0-9a-f]{64}$/i.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  return key.length === 32 && (/^[0-9a-f]{64}$/i.test(v) || /^[A-Za-z0-9+/_-]{43}=?$/.test(v))
    ? key
    : new ParseError('must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32)');
};

const database: Parser<string> = (raw) => {
  const v = raw.trim();
  if (/^sqlite:.+/.test(v)) {
    return v;
  }
  return url(['mysql:', 'mariadb:'])(v);
};

export const ENV_SPEC: { [K in keyof Env]: VarSpec<K> } = {
  NODE_ENV: {
    description: 'development, production or test',
    default: 'development',
    parse: oneOf(['development', 'production', 'test'] as const),
  },
  HOST: { description: 'Interface the HTTP server binds to', default: '0.0.0.0', parse: str },
  PORT: { description: 'HTTP port', default: '3000', parse: int(0, 65535) },
  APP_PUBLIC_URL: {
    description: 'Public base URL used in mailed links (never the request Host)',
    parse: url(['http:', 'https:']),
  },
  DATABASE_URL: {
    description: 'mysql://user:pass@host:3306/db or sqlite:path',
    default: 'sqlite:var/gatehouse.sqlite',
    parse: database,
  },
  DB_POOL_SIZE: { description: 'MySQL connection pool size', default: '10', parse: int(1, 500) },
  DB_MIGRATE_ON_START: { description: 'Run pending migrations at boot', default: 'true', parse: bool },
  JWT_SECRET: {
    description: 'HS256 secret, at least 32 bytes; generated under var/ in development when unset',
    parse: optional,
  },
  JWT_ISSUER: { description: 'iss claim of access tokens', default: 'gatehouse', parse: str },
  JWT_AUDIENCE: { description: 'aud claim of access tokens', default: 'gatehouse-api', parse: str },
  JWT_ACCESS_TTL: { description: 'Access token lifetime', default: '15m', parse: duration },
  REFRESH_TTL: { description: 'Absolute session (refresh token) lifetime', default: '30d', parse: duration },
  VERIFY_TOKEN_TTL: { description: 'Email verification token lifetime', default: '24h', parse: duration },
  RESET_TOKEN_TTL: { description: 'Password reset token lifetime', default: '1h', parse: duration },
  TOKEN_PURGE_INTERVAL: {
    description: 'How often expired and used tokens are purged',
    default: '1h',
    parse: duration,
  },
  BCRYPT_COST: {
    description: 'bcrypt cost factor (never below 10 in production)',
    default: '12',
    parse: int(4, 31),
  },
  PASSWORD_MIN_LENGTH: {
    description: 'Minimum password length in code points',
    default: '8',
    parse: int(8, 128),
  },
  AUTH_REQUIRE_VERIFIED_EMAIL: {
    description: 'Login and todos need a verified email',
    default: 'true',
    parse: bool,
  },
  AUTH_LOCKOUT_THRESHOLD: {
    description: 'Consecutive failed logins before an account is locked',
    default: '5',
    parse: int(1, 1000),
  },
  AUTH_LOCKOUT_DURATION: {
    description: 'First lockout period; it doubles with each further lockout',
    default: '15m',
    parse: duration,
  },
  AUTH_THROTTLE_WINDOW: {
    description: 'Window of the login/register/verify/resend/forgot/reset/refresh rate limits',
    default: '15m',
    parse: duration,
  },
  AUTH_THROTTLE_IP_LIMIT: {
    description: 'Requests per window to each public auth route from one client IP',
    default: '100',
    parse: int(1, 1_000_000),
  },
  AUTH_THROTTLE_EMAIL_LIMIT: {
    description: 'Requests per window to each public auth route naming one email (known or not)',
    default: '10',
    parse: int(1, 1_000_000),
  },
  ACCOUNT_EXISTS_MAIL_WINDOW: {
    description: 'At most one "account exists" mail per address within this window',
    default: '1h',
    parse: duration,
  },
  HASH_QUEUE_LIMIT: {
    description: 'Password hashes waiting at most; beyond it login answers 503',
    default: '64',
    parse: int(1, 100000),
  },
  MAIL_URL: {
    description: 'smtp:// or smtps:// URL; unset in development writes .eml files to MAIL_DIR',
    parse: optional,
  },
  MAIL_FROM: {
    description: 'From header of outgoing mail',
    default: 'Gatehouse <no-reply@gatehouse.local>',
    parse: str,
  },
  MAIL_MAX_ATTEMPTS: {
    description: 'Delivery attempts before an outbox row is marked dead',
    default: '8',
    parse: int(1, 100),
  },
  MAIL_POLL_INTERVAL: {
    description: 'How often the outbox worker looks for due mail',
    default: '1s',
    parse: duration,
  },
  MAIL_DIR: {
    description: 'Where the development file transport writes .eml files',
    default: 'var/mail',
    parse: str,
  },
  MAIL_OUTBOX_RETENTION: {
    description: 'Sent and dead outbox rows older than this are deleted (pending ones never are)',
    default: '30d',
    parse: duration,
  },
  MAIL_PAYLOAD_KEY: {
    description:
      'AES-256-GCM key (32 bytes, hex or base64) that encrypts outbox payloads at rest; required in production, generated under var/ in development',
    parse: aesKey,
  },
  MAIL_RETRY_BASE_DELAY: {
    description: 'First retry delay of a failed mail; it doubles per attempt (with jitter, capped at 1h)',
    default: '30s',
    parse: duration,
  },
  MAIL_SMTP_TIMEOUT: {
    description: 'SMTP connection, greeting and socket timeout',
    default: '30s',
    parse: duration,
  },
  REDIS_URL: {
    description: 'redis:// URL for shared throttle counters; unset keeps them in memory',
    parse: optional,
  },
  TRUST_PROXY: {
    description: 'false, true, or a comma list of proxy IPs/CIDRs whose X-Forwarded-For is trusted',
    default: 'false',
    parse: trustProxy,
  },
  CORS_ORIGINS: {
    description: 'Comma list of origins allowed by CORS; empty disables CORS',
    default: '',
    parse: origins,
  },
  BODY_LIMIT: { description: 'Largest accepted request body', default: '100kb', parse: bytes },
  LOG_LEVEL: {
    description: 'trace, debug, info, warn, error, fatal or silent',
    default: 'info',
    parse: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const),
  },
  METRICS_TOKEN: {
    description: 'When set, /metrics requires "Authorization: Bearer <token>"',
    parse: optional,
  },
  AUDIT_RETENTION_DAYS: {
    description: 'Audit events older than this many days are purged',
    default: '365',
    parse: int(1, 36500),
  },
  AUDIT_PURGE_INTERVAL: {
    description: 'How often audit events past AUDIT_RETENTION_DAYS are purged',
    default: '1h',
    parse: duration,
  },
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses every variable and throws one ConfigError naming every bad one. */
export function parseEnv(raw: Record<string, string | undefined>): Env {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(ENV_SPEC) as [keyof Env, VarSpec<keyof Env>][]) {
    const given = raw[name];
    const value = given !== undefined && given !== '' ? given : spec.default;
    if (value === undefined) {
      out[name] = undefined;
      continue;
    }
    const parsed = spec.parse(value);
    if (parsed instanceof ParseError) {
      problems.push(`${name} ${parsed.message}`);
    } else {
      out[name] = parsed;
    }
  }
  const env = out as unknown as Env;
  if (problems.length === 0) {
    env.APP_PUBLIC_URL ??= `http://localhost:${env.PORT}`;
    problems.push(...crossChecks(env, raw));
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return env;
}

function crossChecks(env: Env, raw: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if (env.NODE_ENV === 'production' && !raw.APP_PUBLIC_URL) {
    problems.push('APP_PUBLIC_URL is required in production (links in mail are built from it)');
  }
  if (env.JWT_SECRET !== undefined) {
    if (Buffer.byteLength(env.JWT_SECRET) < 32) {
      problems.push('JWT_SECRET must be at least 32 bytes');
    } else if (env.NODE_ENV === 'production' && PLACEHOLDER_SECRETS.some((re) => re.test(env.JWT_SECRET!))) {
      problems.push('JWT_SECRET is a placeholder; generate one with `openssl rand -base64 48`');
    }
  }
  if (env.NODE_ENV === 'production') {
    if (env.JWT_SECRET === undefined) {
      problems.push('JWT_SECRET is required in production');
    }
    if (env.BCRYPT_COST < 10) {
      problems.push('BCRYPT_COST must be at least 10 in production');
    }
    if (env.MAIL_URL === undefined) {
      problems.push('MAIL_URL is required in production (smtp:// or smtps://)');
    }
    if (env.MAIL_PAYLOAD_KEY === undefined) {
      problems.push('MAIL_PAYLOAD_KEY is required in production (openssl rand -base64 32)');
    }
  }
  if (env.MAIL_URL !== undefined && url(['smtp:', 'smtps:'])(env.MAIL_URL) instanceof ParseError) {
    problems.push('MAIL_URL must be an smtp:// or smtps:// URL');
  }
  if (env.REDIS_URL !== undefined && url(['redis:', 'rediss:'])(env.REDIS_URL) instanceof ParseError) {
    problems.push('REDIS_URL must be a redis:// or rediss:// URL');
  }
  return problems;
}
