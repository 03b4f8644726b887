import { HttpStatus } from '@nestjs/common';
import { AppException } from './problem.js';

/**
 * Driver error codes that mean "the database cannot take this now", not "the query was wrong": the
 * connection was refused, dropped or timed out, or the pool is closed; or the database is held by
 * someone else for longer than the driver waits (SQLite's busy_timeout while another process writes,
 * a backup or a migration; InnoDB's lock wait timeout). A retry later succeeds, so the client gets 503
 * with Retry-After, not a 500 that pages an operator. A duplicate key or a deadlock (retried where it
 * can happen) keeps its own handling.
 */
const CONNECTIVITY_CODES = new Set([
  'SQLITE_BUSY',
  'ER_LOCK_WAIT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'POOL_CLOSED',
]);

const CONNECTIVITY_MESSAGES = [
  /pool is closed/i,
  /connection is in closed state/i,
  /can't add new command when connection is in closed state/i,
];

/** Seconds a client is told to wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * Whether an error (or what it wraps: TypeORM's driverError, a cause) says the database is out of
 * reach, or too busy to take the request. Walks a few levels only, never a cycle.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && CONNECTIVITY_CODES.has(code)) {
      return true;
    }
    if (typeof message === 'string' && CONNECTIVITY_MESSAGES.some((pattern) => pattern.test(message))) {
      return true;
    }
    const wrapper = current as { driverError?: unknown; cause?: unknown };
    current = wrapper.driverError ?? wrapper.cause;
  }
  return false;
}

/** The driver's own code of a connectivity error, for the log line (never for the client). */
export function connectivityCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const { code } = current as { code?: unknown };
    if (typeof code === 'string') {
      return code;
    }
    const wrapper = current as { driverError?: unknown; cause?: unknown };
    current = wrapper.driverError ?? wrapper.cause;
  }
  return error instanceof Error ? error.message : 'unknown';
}

/** The 503 a request gets while the database is away: retry soon, and never drop your tokens. */
export function dependencyUnavailable(): AppException {
  return new AppException(
    HttpStatus.SERVICE_UNAVAILABLE,
    'DEPENDENCY_UNAVAILABLE',
    'A service this request needs is unavailable; retry shortly.',
    undefined,
    { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) },
  );
}
