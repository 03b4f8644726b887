import { z } from 'zod';
import { parseDuration } from './duration.js';

/** The environment as given: process.env, or a record a test or the CLI builds. */
export type EnvRecord = Record<string, string | undefined>;

const PLACEHOLDER_SECRETS = [/change[-_ ]?me/i, /^secret$/i, /^x+$/i, /placeholder/i, /^example/i];

const int = (min: number, max: number) => {
  const range = `must be a whole number between ${min} and ${max}`;
  return z
    .string()
    .regex(/^-?\d+$/, range)
    .transform(Number)
    .pipe(z.int().min(min, range).max(max, range));
};

const bool = z.stringbool({
  truthy: ['true', '1', 'yes', 'on'],
  falsy: ['false', '0', 'no', 'off'],
  error: 'must be true or false',
});

/** A string whose value comes from `parse`; null from it is the given error. */
const parsedWith = <T>(message: string, parse: (raw: string) => T | null) =>
  z.string().transform((raw, ctx) => {
    const value = parse(raw);
    if (value === null) {
      ctx.issues.push({ code: 'custom', message, input: raw });
      return z.NEVER;
    }
    return value;
  });

const duration = parsedWith('must be a duration such as 900s, 15m, 24h or 30d', parseDuration);

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };
const size = (maxMb: number) =>
  parsedWith('must be a size such as 102400, 100kb or 1mb', (raw) => {
    const [, n, unit = 'b'] = /^(\d+)\s*(b|kb|mb)?$/i.exec(raw) ?? [];
    return n === undefined ? null : Number(n) * SIZE_UNITS[unit.toLowerCase()];
  }).pipe(
    z
      .int()
      .min(1024, `must be between 1kb and ${maxMb}mb`)
      .max(maxMb * 1024 * 1024, `must be between 1kb and ${maxMb}mb`),
  );
const bytes = size(50);

const url = (
  protocols: string[],
  error = `must be a URL starting with ${protocols.map((p) => `${p}://`).join(' or ')}`,
) => z.url({ protocol: new RegExp(`^(${protocols.join('|')})$`), hostname: /./, error });

/** A URL other URLs are built on: no trailing slash, so `${base}/path` never doubles it. */
const baseUrl = (protocols: string[], error?: string) =>
  url(protocols, error).transform((u) => u.replace(/\/+$/, ''));

const DATABASE_URL_FORMS = 'must be mysql://user:pass@host:3306/db (or mariadb://) or sqlite:path';

const commaList = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((raw) =>
      raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));

const trustProxy = z.union(
  [
    z
      .string()
      .toLowerCase()
      .pipe(z.enum(['true', 'false']))
      .transform((v) => v === 'true'),
    commaList(z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()])),
  ],
  { error: 'must be true, false or a comma list of proxy IPs/CIDRs' },
);

const origin = z
  .string()
  .transform((o) => o.replace(/\/$/, ''))
  .refine(
    (o) => URL.canParse(o) && new URL(o).origin === o,
    'must be a comma list of origins such as https://app.example',
  );

const AES_KEY = /^([0-9a-f]{64}|[A-Za-z0-9+/_-]{43}=?)$/i;
const AES_KEY_FORM = 'must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32)';

/**
 * One or more 32-byte keys, comma-separated, newest first (DESIGN §6), each as 64 hex digits or
 * (url-safe) base64. A bad entry is named by its position, never echoed: it may be most of a secret.
 */
const aesKeys = z.string().transform((raw, ctx) => {
  const entries = raw.split(',').map((s) => s.trim());
  const bad = entries.flatMap((entry, i) => (AES_KEY.test(entry) ? [] : [i + 1]));
  if (bad.length > 0) {
    const which =
      entries.length === 1
        ? ''
        : ` (${bad.length === 1 ? 'entry' : 'entries'} ${bad.join(', ')} of ${entries.length} in the comma list)`;
    ctx.issues.push({ code: 'custom', message: `${AES_KEY_FORM}${which}`, input: raw });
    return z.NEVER;
  }
  return entries.map((entry) => Buffer.from(entry, entry.length === 64 ? 'hex' : 'base64'));
});

/**
 * Every variable Gatehouse reads, as one zod schema: each variable's parser, default (as written in
 * the environment) and description sit together. ENV_SPEC, `.env.example` and the README table are
 * derived from it; the ConfigModule's validate hook runs it (config.module.ts).
 */
const EnvShape = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'], { error: 'must be development, production or test' })
    .prefault('development')
    .describe('development, production or test'),
  HOST: z
    .string()
    .prefault('0.0.0.0')
    .describe(
      'Interface the HTTP server binds to: an address, or a name; `localhost` binds every address it resolves to (usually 127.0.0.1 and ::1), each with the same protections',
    ),
  PORT: int(0, 65535).prefault('3000').describe('HTTP port'),
  SHUTDOWN_GRACE: duration
    .prefault('20s')
    .describe(
      'On SIGTERM: how long in-flight requests and mail sends may take to finish before their connections are closed and unsent mail is released',
    ),
  APP_PUBLIC_URL: baseUrl(['http', 'https'])
    .optional()
    .describe('Public base URL used in mailed links (never the request Host)'),
  DATABASE_URL: z
    .union([
      z.string().regex(/^sqlite:.+/, DATABASE_URL_FORMS),
      baseUrl(['mysql', 'mariadb'], DATABASE_URL_FORMS),
    ])
    .prefault('sqlite:var/gatehouse.sqlite')
    .describe('mysql://user:pass@host:3306/db or sqlite:path'),
  DB_POOL_SIZE: int(1, 500).prefault('10').describe('MySQL connection pool size'),
  DB_MIGRATE_ON_START: bool.prefault('true').describe('Run pending migrations at boot'),
  DB_CONNECT_DEADLINE: duration
    .prefault('30s')
    .describe('How long boot waits (retrying with backoff) for the database before exiting 1'),
  JWT_SECRET: z
    .string()
    .refine((s) => Buffer.byteLength(s) >= 32, 'must be at least 32 bytes')
    .optional()
    .describe('HS256 secret, at least 32 bytes; generated under var/ in development when unset'),
  // Bounded so that a token stays within the 2,048 characters a client may send (src/auth/bearer-token.ts).
  JWT_ISSUER: z
    .string()
    .max(255)
    .prefault('gatehouse')
    .describe('iss claim of access tokens, at most 255 characters'),
  JWT_AUDIENCE: z
    .string()
    .max(255)
    .prefault('gatehouse-api')
    .describe('aud claim of access tokens, at most 255 characters'),
  JWT_ACCESS_TTL: duration.prefault('15m').describe('Access token lifetime'),
  REFRESH_TTL: duration.prefault('30d').describe('Absolute session (refresh token) lifetime'),
  REFRESH_GRACE: duration
    .prefault('15s')
    .describe(
      'How long a just-rotated refresh token still gets the session’s current pair (two tabs refreshing at once); 0 turns it off',
    ),
  VERIFY_TOKEN_TTL: duration.prefault('24h').describe('Email verification token lifetime'),
  RESET_TOKEN_TTL: duration.prefault('1h').describe('Password reset token lifetime'),
  TOKEN_PURGE_INTERVAL: duration.prefault('1h').describe('How often expired and used tokens are purged'),
  UNVERIFIED_ACCOUNT_TTL: duration
    .prefault('7d')
    .describe('Accounts still unverified this long after sign-up are deleted (frees the address)'),
  BCRYPT_COST: int(4, 31).prefault('12').describe('bcrypt cost factor (never below 10 in production)'),
  PASSWORD_MIN_LENGTH: int(8, 128).prefault('8').describe('Minimum password length in code points'),
  AUTH_REQUIRE_VERIFIED_EMAIL: bool.prefault('true').describe('Login and todos need a verified email'),
  AUTH_LOCKOUT_THRESHOLD: int(1, 100)
    .prefault('5')
    .describe(
      'Consecutive failed logins from one client (IP, IPv6 /64) before that client is locked out of the address',
    ),
  AUTH_LOCKOUT_ACCOUNT_THRESHOLD: int(1, 100)
    .prefault('100')
    .describe(
      'Consecutive failed logins from all clients before the address is locked everywhere (NIST 800-63B: at most 100)',
    ),
  AUTH_LOCKOUT_DURATION: duration
    .pipe(z.int().max(60 * 60 * 1000, 'must be at most 1h'))
    .prefault('15m')
    .describe(
      'Lockout period, fixed (never doubles), at most 1h; each further failure past a threshold locks again',
    ),
  SESSIONS_PER_USER_MAX: int(1, 1000)
    .prefault('50')
    .describe('Live sessions per account; a login beyond it revokes the oldest (reason session_limit)'),
  AUTH_THROTTLE_WINDOW: duration
    .prefault('15m')
    .describe('Window of the login/register/verify/resend/forgot/reset/refresh rate limits'),
  AUTH_THROTTLE_IP_LIMIT: int(1, 1_000_000)
    .prefault('100')
    .describe('Requests per window to each public auth route from one client IP'),
  AUTH_THROTTLE_EMAIL_LIMIT: int(1, 1_000_000)
    .prefault('10')
    .describe('Requests per window to each public auth route naming one email (known or not)'),
  ACCOUNT_EXISTS_MAIL_WINDOW: duration
    .prefault('1h')
    .describe('At most one "account exists" mail per address within this window'),
  HASH_QUEUE_LIMIT: int(1, 100000)
    .prefault('64')
    .describe('Password hashes waiting at most; beyond it login answers 503'),
  HASH_CONCURRENCY: int(1, 1024)
    .optional()
    .describe(
      'bcrypt hashes run at once; default one less than the CPU count (at least 1), leaving a core to the event loop. Keep UV_THREADPOOL_SIZE above it',
    ),
  MAIL_URL: url(['smtp', 'smtps'])
    .optional()
    .describe('smtp:// or smtps:// URL; unset in development writes .eml files to MAIL_DIR'),
  MAIL_FROM: z
    .string()
    .prefault('Gatehouse <no-reply@gatehouse.local>')
    .describe('From header of outgoing mail'),
  MAIL_MAX_ATTEMPTS: int(1, 100)
    .prefault('8')
    .describe('Delivery attempts before an outbox row is marked dead'),
  MAIL_POLL_INTERVAL: duration.prefault('1s').describe('How often the outbox worker looks for due mail'),
  MAIL_DIR: z
    .string()
    .prefault('var/mail')
    .describe('Where the development file transport writes .eml files'),
  MAIL_OUTBOX_RETENTION: duration
    .prefault('30d')
    .describe('Sent and dead outbox rows older than this are deleted (pending ones never are)'),
  MAIL_BUDGET_INTERVAL: duration
    .prefault('1m')
    .describe('At most one mail of a kind (verification, reset) per address within this interval'),
  MAIL_BUDGET_PER_HOUR: int(1, 1000)
    .prefault('5')
    .describe('Mails one address receives per hour at most, over every kind; beyond it none is queued'),
  MAIL_PAYLOAD_KEY: aesKeys
    .optional()
    .describe(
      'AES-256-GCM keys (32 bytes, hex or base64), comma list, newest first: first seals, any opens; required in production, kept under var/ in dev',
    ),
  MAIL_RETRY_BASE_DELAY: duration
    .prefault('30s')
    .describe('First retry delay of a failed mail; it doubles per attempt (with jitter, capped at 1h)'),
  MAIL_SMTP_TIMEOUT: duration
    .prefault('30s')
    .describe('SMTP connection, greeting and socket timeout; a whole send is cancelled after 3 times it'),
  REDIS_URL: url(['redis', 'rediss'])
    .optional()
    .describe('redis:// URL for shared throttle counters; unset keeps them in memory'),
  TRUST_PROXY: trustProxy
    .prefault('false')
    .describe('false, true, or a comma list of proxy IPs/CIDRs whose X-Forwarded-For is trusted'),
  CORS_ORIGINS: commaList(origin)
    .prefault('')
    .describe('Comma list of origins allowed by CORS; empty disables CORS'),
  BODY_LIMIT: bytes.prefault('100kb').describe('Largest accepted request body'),
  BODY_BUDGET: size(4096)
    .prefault('32mb')
    .describe(
      'Bytes all request bodies being received may hold at once (declared lengths); past it a body is refused unread with 503 SERVER_BUSY',
    ),
  BODY_BUDGET_PER_CLIENT: size(4096)
    .prefault('1mb')
    .describe(
      'Bytes one client’s request bodies being received may hold at once; past it a body is refused unread with 429 TOO_MANY_BODIES',
    ),
  REQUEST_TIMEOUT: duration
    .pipe(z.int().min(1000, 'must be between 1s and 1h').max(3_600_000, 'must be between 1s and 1h'))
    .prefault('30s')
    .describe(
      'How long a client may take to send a whole request (headers and body) before it is answered 408 and disconnected, and to take an answer (no progress for that long closes the connection)',
    ),
  LOG_LEVEL: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
      error: 'must be trace, debug, info, warn, error, fatal or silent',
    })
    .prefault('info')
    .describe('trace, debug, info, warn, error, fatal or silent'),
  METRICS_TOKEN: z
    .string()
    .optional()
    .describe('When set, /metrics requires "Authorization: Bearer <token>"'),
  METRICS_PUBLIC: bool
    .prefault('false')
    .describe(
      'Serve /metrics without a token in production (unset METRICS_TOKEN); otherwise it answers 404 there',
    ),
  AUDIT_RETENTION_DAYS: int(1, 36500)
    .prefault('365')
    .describe('Audit events older than this many days are purged'),
  AUDIT_PURGE_INTERVAL: duration
    .prefault('1h')
    .describe('How often audit events past AUDIT_RETENTION_DAYS are purged'),
});

/**
 * What production refuses to run without. Runs beside the per-variable checks, so one error lists
 * both; a variable that failed its own check still holds its raw string here, hence the type guards.
 */
const EnvSchema = EnvShape.superRefine((env, ctx) => {
  const refuse = (name: keyof typeof env, message: string) =>
    ctx.addIssue({ code: 'custom', path: [name], message });
  const { BODY_LIMIT: one, BODY_BUDGET: all, BODY_BUDGET_PER_CLIENT: perClient } = env;
  if (typeof one === 'number' && typeof perClient === 'number' && perClient < one) {
    refuse('BODY_BUDGET_PER_CLIENT', 'must be at least BODY_LIMIT (else no largest body is ever accepted)');
  }
  if (typeof perClient === 'number' && typeof all === 'number' && all < perClient) {
    refuse('BODY_BUDGET', 'must be at least BODY_BUDGET_PER_CLIENT');
  }
  if (env.NODE_ENV !== 'production') {
    return;
  }
  if (env.APP_PUBLIC_URL === undefined) {
    refuse('APP_PUBLIC_URL', 'is required in production (links in mail are built from it)');
  }
  const secret = env.JWT_SECRET;
  if (secret === undefined) {
    refuse('JWT_SECRET', 'is required in production');
  } else if (Buffer.byteLength(secret) >= 32 && PLACEHOLDER_SECRETS.some((re) => re.test(secret))) {
    refuse('JWT_SECRET', 'is a placeholder; generate one with `openssl rand -base64 48`');
  }
  if (typeof env.BCRYPT_COST === 'number' && env.BCRYPT_COST < 10) {
    refuse('BCRYPT_COST', 'must be at least 10 in production');
  }
  if (env.MAIL_URL === undefined) {
    refuse('MAIL_URL', 'is required in production (smtp:// or smtps://)');
  }
  if (env.MAIL_PAYLOAD_KEY === undefined) {
    refuse('MAIL_PAYLOAD_KEY', 'is required in production (openssl rand -base64 32)');
  }
}).transform((env) => ({ ...env, APP_PUBLIC_URL: env.APP_PUBLIC_URL ?? `http://localhost:${env.PORT}` }));

export type Env = z.output<typeof EnvSchema>;
export type NodeEnv = Env['NODE_ENV'];
export type LogLevel = Env['LOG_LEVEL'];
export type TrustProxy = Env['TRUST_PROXY'];

export interface EnvVarSpec {
  description: string;
  /** As written in the environment; absent when the variable has no default. */
  default?: string;
}

/** Each variable's description and default, as the docs generator and the Docker test read them. */
export const ENV_SPEC = Object.fromEntries(
  Object.entries(z.toJSONSchema(EnvShape, { io: 'input', unrepresentable: 'any' }).properties ?? {}).map(
    ([name, property]) => {
      const { description = '', default: fallback } = property as { description?: string; default?: string };
      return [name, fallback === undefined ? { description } : { description, default: fallback }];
    },
  ),
) as Record<keyof Env, EnvVarSpec>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates the environment and throws one ConfigError naming every bad variable. Values are
 * trimmed, and an empty one counts as unset (its default applies).
 */
export function parseEnv(raw: EnvRecord): Env {
  const given = Object.fromEntries(
    Object.entries(raw).flatMap(([name, value]) =>
      value === undefined || value.trim() === '' ? [] : [[name, value.trim()]],
    ),
  );
  const result = EnvSchema.safeParse(given);
  if (!result.success) {
    throw new ConfigError(problemsOf(result.error));
  }
  return result.data;
}

/** One line per variable, however many checks it failed. */
function problemsOf(error: z.ZodError): string[] {
  const byVariable = new Map<string, Set<string>>();
  for (const issue of error.issues) {
    const name = String(issue.path[0] ?? 'environment');
    byVariable.set(name, (byVariable.get(name) ?? new Set()).add(issue.message));
  }
  return [...byVariable].map(([name, messages]) => `${name} ${[...messages].join('; ')}`);
}
