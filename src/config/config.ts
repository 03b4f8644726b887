import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Env, type EnvRecord, parseEnv } from './env.js';

/** One typed namespace per concern, built from the validated environment. */
export function appConfig(env: Env) {
  return {
    nodeEnv: env.NODE_ENV,
    isProduction: env.NODE_ENV === 'production',
    host: env.HOST,
    port: env.PORT,
    shutdownGraceMs: env.SHUTDOWN_GRACE,
    publicUrl: env.APP_PUBLIC_URL,
    trustProxy: env.TRUST_PROXY,
    corsOrigins: env.CORS_ORIGINS,
    bodyLimit: env.BODY_LIMIT,
    requestTimeoutMs: env.REQUEST_TIMEOUT,
    bodyBudget: env.BODY_BUDGET,
    bodyBudgetPerClient: env.BODY_BUDGET_PER_CLIENT,
    logLevel: env.LOG_LEVEL,
    metricsToken: env.METRICS_TOKEN,
    metricsPublic: env.METRICS_PUBLIC,
  };
}

export function databaseConfig(env: Env) {
  return {
    url: env.DATABASE_URL,
    poolSize: env.DB_POOL_SIZE,
    migrateOnStart: env.DB_MIGRATE_ON_START,
    connectDeadlineMs: env.DB_CONNECT_DEADLINE,
  };
}

export function authConfig(env: Env) {
  return {
    jwtSecret: resolveJwtSecret(env),
    jwtIssuer: env.JWT_ISSUER,
    jwtAudience: env.JWT_AUDIENCE,
    accessTtlMs: env.JWT_ACCESS_TTL,
    refreshTtlMs: env.REFRESH_TTL,
    refreshGraceMs: env.REFRESH_GRACE,
    bcryptCost: env.BCRYPT_COST,
    passwordMinLength: env.PASSWORD_MIN_LENGTH,
    requireVerifiedEmail: env.AUTH_REQUIRE_VERIFIED_EMAIL,
    lockoutThreshold: env.AUTH_LOCKOUT_THRESHOLD,
    lockoutAccountThreshold: env.AUTH_LOCKOUT_ACCOUNT_THRESHOLD,
    lockoutDurationMs: env.AUTH_LOCKOUT_DURATION,
    sessionsPerUserMax: env.SESSIONS_PER_USER_MAX,
    hashQueueLimit: env.HASH_QUEUE_LIMIT,
    hashConcurrency: env.HASH_CONCURRENCY ?? Math.max(1, availableParallelism() - 1),
    throttleWindowMs: env.AUTH_THROTTLE_WINDOW,
    throttleIpLimit: env.AUTH_THROTTLE_IP_LIMIT,
    throttleEmailLimit: env.AUTH_THROTTLE_EMAIL_LIMIT,
    redisUrl: env.REDIS_URL,
  };
}

export function tokensConfig(env: Env) {
  return {
    verifyTtlMs: env.VERIFY_TOKEN_TTL,
    resetTtlMs: env.RESET_TOKEN_TTL,
    purgeIntervalMs: env.TOKEN_PURGE_INTERVAL,
    unverifiedAccountTtlMs: env.UNVERIFIED_ACCOUNT_TTL,
  };
}

export function mailConfig(env: Env) {
  return {
    url: env.MAIL_URL,
    from: env.MAIL_FROM,
    maxAttempts: env.MAIL_MAX_ATTEMPTS,
    pollIntervalMs: env.MAIL_POLL_INTERVAL,
    dir: env.MAIL_DIR,
    publicUrl: env.APP_PUBLIC_URL,
    nodeEnv: env.NODE_ENV,
    payloadKeys: resolveMailPayloadKeys(env),
    retryBaseDelayMs: env.MAIL_RETRY_BASE_DELAY,
    smtpTimeoutMs: env.MAIL_SMTP_TIMEOUT,
    outboxRetentionMs: env.MAIL_OUTBOX_RETENTION,
    budgetIntervalMs: env.MAIL_BUDGET_INTERVAL,
    budgetPerHour: env.MAIL_BUDGET_PER_HOUR,
    accountExistsIntervalMs: env.ACCOUNT_EXISTS_MAIL_WINDOW,
  };
}

export function auditConfig(env: Env) {
  return { retentionDays: env.AUDIT_RETENTION_DAYS, purgeIntervalMs: env.AUDIT_PURGE_INTERVAL };
}

export interface Config {
  app: ReturnType<typeof appConfig>;
  database: ReturnType<typeof databaseConfig>;
  auth: ReturnType<typeof authConfig>;
  tokens: ReturnType<typeof tokensConfig>;
  mail: ReturnType<typeof mailConfig>;
  audit: ReturnType<typeof auditConfig>;
}

export type AppConfig = Config['app'];
export type DatabaseConfig = Config['database'];
export type MailConfig = Config['mail'];

/** Validates the environment and shapes it into the namespaces; the ConfigModule's validate hook. */
export function loadConfig(raw: EnvRecord = process.env): Config {
  const env = parseEnv(raw);
  return {
    app: appConfig(env),
    database: databaseConfig(env),
    auth: authConfig(env),
    tokens: tokensConfig(env),
    mail: mailConfig(env),
    audit: auditConfig(env),
  };
}

const DEV_SECRET_FILE = 'var/jwt-secret';
let testSecret: string | undefined;

/**
 * Production must be given a secret (parseEnv refuses to boot otherwise). Development generates one
 * on first start and keeps it under var/ so tokens survive restarts; tests use one per process.
 */
function resolveJwtSecret(env: Env): string {
  if (env.JWT_SECRET !== undefined) {
    return env.JWT_SECRET;
  }
  if (env.NODE_ENV === 'test') {
    return (testSecret ??= randomBytes(48).toString('base64url'));
  }
  if (existsSync(DEV_SECRET_FILE)) {
    const stored = readFileSync(DEV_SECRET_FILE, 'utf8').trim();
    if (Buffer.byteLength(stored) >= 32) {
      return stored;
    }
  }
  const secret = randomBytes(48).toString('base64url');
  mkdirSync(dirname(DEV_SECRET_FILE), { recursive: true, mode: 0o700 });
  writeFileSync(DEV_SECRET_FILE, `${secret}\n`, { mode: 0o600 });
  chmodSync(DEV_SECRET_FILE, 0o600);
  return secret;
}

const DEV_MAIL_KEY_FILE = 'var/mail-payload-key';
let testMailKey: Buffer | undefined;

/**
 * The keys that encrypt secrets (token links) in outbox payloads, newest first. Production must
 * configure them (parseEnv refuses to boot otherwise); development keeps a generated one under var/ so
 * queued mail survives a restart; tests share one per process, so two app instances can read each
 * other's rows.
 */
function resolveMailPayloadKeys(env: Env): Buffer[] {
  if (env.MAIL_PAYLOAD_KEY !== undefined) {
    return env.MAIL_PAYLOAD_KEY;
  }
  if (env.NODE_ENV === 'test') {
    return [(testMailKey ??= randomBytes(32))];
  }
  if (existsSync(DEV_MAIL_KEY_FILE)) {
    const stored = Buffer.from(readFileSync(DEV_MAIL_KEY_FILE, 'utf8').trim(), 'base64');
    if (stored.length === 32) {
      return [stored];
    }
  }
  const key = randomBytes(32);
  mkdirSync(dirname(DEV_MAIL_KEY_FILE), { recursive: true, mode: 0o700 });
  writeFileSync(DEV_MAIL_KEY_FILE, `${key.toString('base64')}\n`, { mode: 0o600 });
  chmodSync(DEV_MAIL_KEY_FILE, 0o600);
  return [key];
}
